-- What is inside layers, analysed on demand and kept for good by layer
-- digest, so that a base layer shared by many images is read once. A row is
-- written 'running' with a lease by the process that analyses the layer, so
-- one layer is analysed by one process of a deployment at a time and a
-- process that died leaves a lease that runs out; the entries and the state
-- 'done' are written in one transaction, so nothing half-analysed is ever
-- read. 'failed' keeps the reason (too_large, invalid, upstream) until a new
-- request retries it.
CREATE TABLE layer_contents (
    digest       TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL DEFAULT '',
    compression  TEXT NOT NULL DEFAULT '',
    entry_count  BIGINT NOT NULL DEFAULT 0,
    bytes_read   BIGINT NOT NULL DEFAULT 0,
    lease_owner  TEXT,
    lease_until  BIGINT,
    updated_at   BIGINT NOT NULL
);
-- A layer's tar entries, one row per directory they are in, compactly
-- encoded, so that one directory of an image is listed by reading that
-- directory's rows (and its ancestors') of each layer, never a whole layer.
CREATE TABLE layer_content_dirs (
    digest   TEXT NOT NULL REFERENCES layer_contents (digest) ON DELETE CASCADE,
    dir      TEXT NOT NULL,
    entries  BLOB NOT NULL,
    PRIMARY KEY (digest, dir)
) WITHOUT ROWID;
-- An image's (a platform manifest's) contents analysis as people asked
-- for it: its state and, once every layer is known, its summary as JSON.
CREATE TABLE image_contents (
    digest        TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    message       TEXT NOT NULL DEFAULT '',
    summary       BLOB,
    requested_at  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
