-- The schema the SQLite migrations leave, as text: schema/sqlite.db, the empty
-- database new ones copy (see createFresh), is made from it. Both are made by
-- `go test ./store/ -run TestSchemaSnapshot -update` from migrations
-- 0001_content_and_tags.sql to 0075_subscription_subscriber.sql; do not edit.

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

CREATE TABLE images (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest)
);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    payload     BLOB NOT NULL,
    created_at  BIGINT NOT NULL
, dedup_key TEXT);

CREATE INDEX events_by_subject ON events (registry, repository, tag, created_at);

CREATE TABLE subscriptions (
    id              TEXT PRIMARY KEY,
    registry        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    tag             TEXT NOT NULL,
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    token_hash      TEXT NOT NULL,
    status          TEXT NOT NULL,
    status_reason   TEXT NOT NULL,
    client          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    failing_since   BIGINT
, receiver TEXT NOT NULL DEFAULT '', format TEXT NOT NULL DEFAULT 'standardwebhooks', headers TEXT NOT NULL DEFAULT '[]', tag_include TEXT NOT NULL DEFAULT '', tag_exclude TEXT NOT NULL DEFAULT '', tag_semver TEXT NOT NULL DEFAULT '', coalesce_ms BIGINT NOT NULL DEFAULT 0, since_change BIGINT NOT NULL DEFAULT 0, subscriber TEXT NOT NULL DEFAULT '');

CREATE INDEX subscriptions_by_subject ON subscriptions (registry, repository, tag, status);

CREATE TABLE subscription_events (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    type            TEXT NOT NULL,
    PRIMARY KEY (subscription_id, type)
);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id        TEXT REFERENCES events (id),
    webhook_id      TEXT NOT NULL,
    type            TEXT NOT NULL,
    payload         BLOB,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_status_code INTEGER,
    last_error      TEXT NOT NULL,
    last_attempt_at BIGINT,
    created_at      BIGINT NOT NULL, coalesce_key TEXT, first_event_id TEXT REFERENCES events (id), coalesced INTEGER NOT NULL DEFAULT 1,
    UNIQUE (subscription_id, webhook_id)
);

CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, id);

CREATE TABLE delivery_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    started_at      BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    status_code     INTEGER NOT NULL,
    error           TEXT NOT NULL,
    response        TEXT NOT NULL
);

CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempt);

CREATE TABLE hook_tokens (
    token           TEXT PRIMARY KEY,
    registry        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (registry, repository)
);

CREATE TABLE platform_images (
    registry        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    digest          TEXT NOT NULL,  -- the top-level image (index or manifest)
    platform_digest TEXT NOT NULL,
    platform        TEXT NOT NULL,
    chain_id        TEXT NOT NULL,
    layer_count     INTEGER NOT NULL,
    first_seen_at   BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest, platform_digest)
);

CREATE INDEX platform_images_by_platform_digest ON platform_images (registry, repository, platform_digest);

CREATE TABLE parents (
    registry               TEXT NOT NULL,
    repository             TEXT NOT NULL,
    digest                 TEXT NOT NULL,
    platform_digest        TEXT NOT NULL,
    platform               TEXT NOT NULL,
    parent_registry        TEXT NOT NULL,
    parent_repository      TEXT NOT NULL,
    parent_platform_digest TEXT NOT NULL,
    method                 TEXT NOT NULL,
    recorded_at            BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest, platform_digest)
);

CREATE INDEX parents_by_parent ON parents (parent_registry, parent_repository, parent_platform_digest);

CREATE TABLE repositories (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    listed_at   BIGINT NOT NULL, visibility TEXT NOT NULL DEFAULT '', visibility_checked_at BIGINT NOT NULL DEFAULT 0, listing_incomplete TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (registry, repository)
);

CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE change_stamps (
    scope   TEXT PRIMARY KEY,
    stamp   BIGINT NOT NULL
);

CREATE INDEX change_stamps_by_stamp ON change_stamps (stamp);

CREATE TABLE tag_changes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    registry        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    tag             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    digest          TEXT,
    previous_digest TEXT,
    at              BIGINT NOT NULL
, change_set BIGINT);

CREATE INDEX tag_changes_by_repository ON tag_changes (registry, repository, id);

CREATE INDEX tag_changes_by_tag ON tag_changes (registry, repository, tag, id);

CREATE INDEX tag_changes_by_digest ON tag_changes (registry, repository, digest);

CREATE TABLE deleted_tags (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    digest      TEXT NOT NULL,
    deleted_at  BIGINT NOT NULL,
    checked_at  BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, tag)
);

CREATE UNIQUE INDEX events_by_dedup_key ON events (dedup_key);

CREATE TABLE known_repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    name        TEXT NOT NULL,
    last_part   TEXT NOT NULL,
    changed_at  BIGINT NOT NULL,
    grams_done  INTEGER NOT NULL,
    UNIQUE (registry, repository)
);

CREATE INDEX known_repositories_by_last_part ON known_repositories (last_part, name);

CREATE INDEX known_repositories_by_grams_done ON known_repositories (grams_done);

CREATE TABLE repository_grams (
    gram          TEXT NOT NULL,
    repository_id BIGINT NOT NULL REFERENCES known_repositories (id) ON DELETE CASCADE,
    PRIMARY KEY (gram, repository_id)
);

CREATE TABLE gram_counts (
    gram TEXT PRIMARY KEY,
    n    BIGINT NOT NULL
);

CREATE TABLE repository_info (
    registry      TEXT NOT NULL,
    repository    TEXT NOT NULL,
    source        TEXT NOT NULL,
    description   TEXT NOT NULL,
    pull_count    BIGINT NOT NULL,
    star_count    BIGINT NOT NULL,
    last_updated  BIGINT NOT NULL,
    fetched_at    BIGINT NOT NULL,
    PRIMARY KEY (registry, repository)
);

CREATE TABLE tracked (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    wanted_at   BIGINT NOT NULL,
    next_at     BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    PRIMARY KEY (registry, repository, tag)
);

CREATE INDEX tracked_due ON tracked (next_at);

CREATE INDEX deliveries_leased ON deliveries (lease_until);

CREATE INDEX deliveries_held ON deliveries (subscription_id, coalesce_key);

CREATE INDEX deliveries_by_first_event ON deliveries (first_event_id);

CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at, id);

CREATE INDEX tag_changes_by_set ON tag_changes (change_set);

CREATE TABLE fanout_cursors (
    name            TEXT PRIMARY KEY,
    position        BIGINT NOT NULL,
    event_key       TEXT NOT NULL DEFAULT '',
    subscription_id TEXT NOT NULL DEFAULT '',
    lease_owner     TEXT,
    lease_until     BIGINT
);

CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    person     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    person     TEXT NOT NULL,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX api_tokens_person ON api_tokens (person, created_at);

CREATE TABLE badge_tokens (
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    salt       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (registry, repository)
);

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

CREATE TABLE layer_content_dirs (
    digest   TEXT NOT NULL REFERENCES layer_contents (digest) ON DELETE CASCADE,
    dir      TEXT NOT NULL,
    entries  BLOB NOT NULL,
    PRIMARY KEY (digest, dir)
) WITHOUT ROWID;

CREATE TABLE image_contents (
    digest        TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    message       TEXT NOT NULL DEFAULT '',
    summary       BLOB,
    requested_at  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE supply_chains (
    registry     TEXT NOT NULL,
    repository   TEXT NOT NULL,
    digest       TEXT NOT NULL,
    body         TEXT NOT NULL,
    sbom_digest  TEXT NOT NULL,
    checked_at   BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest)
);
