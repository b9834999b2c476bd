-- Pruning deletes events once no delivery refers to them; this index makes
-- "does any delivery refer to this event" a lookup instead of a scan.
CREATE INDEX deliveries_by_event ON deliveries (event_id);
