-- Who made a subscription when it is known beyond its address: the
-- signed-in person ('person:' and their identity), '' for anyone else. A
-- subscription is the same as another only when the same subscriber made
-- both, by the same address or as the same person.
ALTER TABLE subscriptions ADD COLUMN subscriber TEXT NOT NULL DEFAULT '';
