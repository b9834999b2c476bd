-- The receiver (scheme://host:port) a subscription delivers to. The worker
-- bounds the attempts in flight to one receiver, so a slow or hung receiver
-- cannot hold every delivery slot while others wait. Set from url when a
-- subscription is created; rows from before this migration are filled in at
-- start-up (Store.Open), since url is parsed in Go.
ALTER TABLE subscriptions ADD COLUMN receiver TEXT NOT NULL DEFAULT '';
