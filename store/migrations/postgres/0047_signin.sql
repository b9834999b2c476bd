-- Who is signed in, and the tokens scripts and badges carry. No secret is
-- kept in clear: a session row holds the SHA-256 of its cookie's secret, an
-- API token row the SHA-256 of its token (a random 256-bit value, so a
-- plain hash suffices: it is not a password), and a badge token row only
-- the salt from which the service derives the token with a key the
-- database does not hold. Every process of a deployment reads the same
-- rows, so a session or token made on one is accepted by all.
CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    person     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
-- A token's id is public (it names the token in lists and in the route that
-- revokes it); its hash is what a presented token is compared with.
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
-- One badge token per repository: a new salt retires the old token.
CREATE TABLE badge_tokens (
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    salt       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (registry, repository)
);
