-- Every change of a tag, recorded once: 'created' (first seen, or pushed
-- again after it was deleted; previous_digest NULL), 'moved', or 'deleted'
-- (digest NULL). It replaces tag_history, which could not hold a deletion
-- (its new_digest was NOT NULL); every recorded move is carried over with
-- its id, so cursors and order stay as they were.
CREATE TABLE tag_changes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    registry        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    tag             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    digest          TEXT,
    previous_digest TEXT,
    at              BIGINT NOT NULL
);
INSERT INTO tag_changes (id, registry, repository, tag, kind, digest, previous_digest, at)
    SELECT id, registry, repository, tag,
           CASE WHEN old_digest IS NULL THEN 'created' ELSE 'moved' END,
           new_digest, old_digest, moved_at
    FROM tag_history ORDER BY id;
DROP TABLE tag_history;
-- A repository's history page, newest first; one tag's; "which tags ever
-- pointed at this image" (the parent's tags).
CREATE INDEX tag_changes_by_repository ON tag_changes (registry, repository, id);
CREATE INDEX tag_changes_by_tag ON tag_changes (registry, repository, tag, id);
CREATE INDEX tag_changes_by_digest ON tag_changes (registry, repository, digest);

-- Tags the registry no longer has: where each last pointed and when its
-- deletion was noticed, so a read of one answers "removed" from the store
-- (no registry request per badge view), and checked_at says when the
-- registry was last asked. A push of the tag again removes its row here and
-- records it as created.
CREATE TABLE deleted_tags (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    digest      TEXT NOT NULL,
    deleted_at  BIGINT NOT NULL,
    checked_at  BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, tag)
);

-- Events that must be sent once per subject whatever noticed their cause:
-- base.updated is one per (affected image, new base digest, audience), so a
-- rebuild that moves several base tags, noticed by concurrent checks, stores
-- one event. NULL for events without such a key (NULLs never conflict).
ALTER TABLE events ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX events_by_dedup_key ON events (dedup_key);
