-- The change stamp of each scope (a repository's tags, or the set of known
-- platform images): the number, from one global sequence, of the last
-- transaction that changed it. In-memory caches keep the stamp of what they
-- were made from and are current while it is unchanged. Every process
-- learns a new stamp from the notification the trigger below sends when the
-- transaction commits (channel imagebadger_stamps, payload "stamp scope"),
-- and catches up with "WHERE stamp > the last one seen" should it miss one.
CREATE SEQUENCE change_stamp_seq;
CREATE TABLE change_stamps (
    scope   TEXT PRIMARY KEY,
    stamp   BIGINT NOT NULL
);
CREATE INDEX change_stamps_by_stamp ON change_stamps (stamp);

CREATE FUNCTION notify_change_stamp() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('imagebadger_stamps', NEW.stamp::text || ' ' || NEW.scope);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER change_stamps_notify AFTER INSERT OR UPDATE ON change_stamps
    FOR EACH ROW EXECUTE FUNCTION notify_change_stamp();
