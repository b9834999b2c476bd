-- What a subscription asks of its deliveries besides the events:
-- format is how each delivery is shaped for its receiver (standardwebhooks,
-- slack, discord, teams, ntfy, github, gitlab, microbadger); headers are
-- the extra request headers sent on every attempt, a JSON array of
-- [name, value] pairs, stored as given since every attempt needs them and
-- never shown again; tag_include, tag_exclude (RE2) and tag_semver (a
-- constraint) choose the tags a repository-wide subscription follows, ''
-- for none; coalesce_ms is the window within which the moves of one image
-- are sent as one delivery (0: each at once).
ALTER TABLE subscriptions ADD COLUMN format TEXT NOT NULL DEFAULT 'standardwebhooks';
ALTER TABLE subscriptions ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE subscriptions ADD COLUMN tag_include TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN tag_exclude TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN tag_semver TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN coalesce_ms BIGINT NOT NULL DEFAULT 0;

-- A delivery held to coalesce (next_attempt_at is the end of its window)
-- absorbs the later events of its coalesce_key (the event type and the
-- image) until then: event_id becomes the latest event, first_event_id
-- stays the first one (whose previousDigest the delivery is sent from) and
-- coalesced counts the events it holds. coalesce_key is NULL for every
-- delivery that is not held.
ALTER TABLE deliveries ADD COLUMN coalesce_key TEXT;
ALTER TABLE deliveries ADD COLUMN first_event_id TEXT REFERENCES events (id);
ALTER TABLE deliveries ADD COLUMN coalesced INTEGER NOT NULL DEFAULT 1;
CREATE INDEX deliveries_held ON deliveries (subscription_id, coalesce_key);
CREATE INDEX deliveries_by_first_event ON deliveries (first_event_id);
