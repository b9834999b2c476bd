-- A worker claims due deliveries oldest first, by (next_attempt_at, id).
-- One move fanned out to thousands of subscriptions gives them all one
-- next_attempt_at, so an index without id made PostgreSQL read and sort the
-- whole fan-out on every claim; with id the index yields the claim's first
-- rows in order and the scan stops there.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at, id);
