-- The change stamp of each scope (a repository's tags, or the set of known
-- platform images): the number, from one global sequence, of the last
-- transaction that changed it. In-memory caches keep the stamp of what they
-- were made from and are current while it is unchanged; another process
-- catches up with "WHERE stamp > the last one seen".
CREATE TABLE change_stamps (
    scope   TEXT PRIMARY KEY,
    stamp   BIGINT NOT NULL
);
CREATE INDEX change_stamps_by_stamp ON change_stamps (stamp);
