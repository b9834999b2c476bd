-- Tag names outside the distribution spec's grammar,
-- [A-Za-z0-9_][A-Za-z0-9._-]{0,127}, are no longer recorded; those a
-- registry listed before are dropped from the current tags, so they are
-- neither shown nor polled nor put in a delivery's headers. Their history
-- stays.
DELETE FROM tags WHERE tag !~ '^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$';
