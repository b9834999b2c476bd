-- Webhook subscriptions. tag is '' for a subscription to every tag of the
-- repository. The manage token is stored only as its SHA-256 (hex), so a
-- copy of the database does not hand out control of subscriptions; the
-- signing secret must be stored as is, since every delivery needs it.
-- failing_since is when the current run of failed attempts began (NULL while
-- the last attempt succeeded), for the "failing for 5 days" rule.
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
);
CREATE INDEX subscriptions_by_subject ON subscriptions (registry, repository, tag, status);

-- The event types a subscription wants, one row each.
CREATE TABLE subscription_events (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    type            TEXT NOT NULL,
    PRIMARY KEY (subscription_id, type)
);

-- The outbox: one row per (event, subscription), written in the transaction
-- that wrote the event, before anything is sent. webhook_id is the event's id
-- (the same on every retry); a ping has no event row and carries its payload
-- itself. A row is claimed by setting lease_owner/lease_until, so two
-- workers never send the same attempt at once; an expired lease (a crashed
-- process) makes the row claimable again.
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
    created_at      BIGINT NOT NULL,
    UNIQUE (subscription_id, webhook_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, id);

-- Every attempt of a delivery, for the subscriber's delivery log.
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

-- Per-repository tokens for Docker Hub's push webhooks
-- (POST /hooks/dockerhub/{token}). They are shown on pages, so stored as is.
CREATE TABLE hook_tokens (
    token           TEXT PRIMARY KEY,
    registry        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (registry, repository)
);
