-- What the watcher polls, shared by every process of a deployment: a tag
-- (tag set) or a repository's listing (tag ''), wanted by a subscription or
-- a --watch flag. A process claims due rows in batches with a lease, checks
-- them and sets when they are due again, so each is checked once per poll
-- interval whatever the number of processes, and the rows of a process that
-- died are claimed by the others once their lease expires. wanted_at is
-- when something last said the row is wanted; rows nobody has wanted for a
-- while are dropped.
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
-- Leases held now, counted by the claim of deliveries per receiver.
CREATE INDEX deliveries_leased ON deliveries (lease_until);
