-- Content fetched by digest is immutable: stored once, never fetched again.
CREATE TABLE manifests (
    digest      TEXT PRIMARY KEY,
    media_type  TEXT NOT NULL,
    body        BLOB NOT NULL,
    fetched_at  BIGINT NOT NULL
);

CREATE TABLE configs (
    digest      TEXT PRIMARY KEY,
    body        BLOB NOT NULL,
    fetched_at  BIGINT NOT NULL
);

-- Where each known tag points, and when the registry was last asked.
-- Times are Unix milliseconds, portable to PostgreSQL's BIGINT.
CREATE TABLE tags (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    digest      TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL,
    checked_at  BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, tag)
);
CREATE INDEX tags_by_digest ON tags (registry, repository, digest);

-- Every image (top-level digest) seen in a repository, with when it was first seen.
CREATE TABLE images (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest)
);
