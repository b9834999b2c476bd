-- Every observed move of a tag: the old digest (NULL for a tag seen the first
-- time), the new one, and when the move was noticed.
CREATE TABLE tag_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    old_digest  TEXT,
    new_digest  TEXT NOT NULL,
    moved_at    BIGINT NOT NULL
);
CREATE INDEX tag_history_by_tag ON tag_history (registry, repository, tag, id);
CREATE INDEX tag_history_by_old ON tag_history (registry, repository, old_digest);

-- Events emitted by tag moves (the outbox's source). Subject is the image a
-- subscriber would have subscribed to: registry, repository and tag.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    payload     BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_by_subject ON events (registry, repository, tag, created_at);
