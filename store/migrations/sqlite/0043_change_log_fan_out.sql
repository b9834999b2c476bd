-- The change log is what notifications are made from. Recording a move
-- writes the tag and its row in tag_changes, nothing more; notify's fan-out
-- reads the log in order, works out the events and who hears them, and
-- writes the deliveries together with its position in the log.
--
-- change_set groups the changes recorded in one transaction (a base rebuild
-- moving four tags, seen by one listing): the fan-out tells them as one. The
-- set's first change holds NULL, and its ID numbers the set, which the
-- others name; a change recorded before is a set of its own.
ALTER TABLE tag_changes ADD COLUMN change_set BIGINT;
CREATE INDEX tag_changes_by_set ON tag_changes (change_set);

-- The fan-out's place in the log, held by one process at a time under a
-- lease: position is the last change whose deliveries are all written;
-- within the next change set, event_key and subscription_id are the last
-- (event, subscription) pair judged, so a large set is written in several
-- transactions and a successor goes on where a dead holder stopped.
CREATE TABLE fanout_cursors (
    name            TEXT PRIMARY KEY,
    position        BIGINT NOT NULL,
    event_key       TEXT NOT NULL DEFAULT '',
    subscription_id TEXT NOT NULL DEFAULT '',
    lease_owner     TEXT,
    lease_until     BIGINT
);
-- The changes recorded so far had their deliveries queued with them. (An
-- empty database gets its cursor, at 0, from the fan-out's first claim.)
INSERT INTO fanout_cursors (name, position) SELECT 'notify', MAX(id) FROM tag_changes HAVING COUNT(*) > 0;

-- A subscription hears the changes logged after it was made: since_change
-- is the log's last change at its making (0 for those made before: the
-- changes they could hear had their deliveries queued already).
ALTER TABLE subscriptions ADD COLUMN since_change BIGINT NOT NULL DEFAULT 0;
