-- The de-duplication keys of base.updated events joined their parts with a
-- NUL byte, which PostgreSQL refuses in text: a database holding them could
-- not be copied there. The parts are joined by spaces now, which no
-- reference or tag holds; the keys already stored follow, so an event told
-- before and after the upgrade keeps one key. (PostgreSQL never stored any.)
-- SQLite's replace() stops at a NUL, so each key's first NUL is replaced by
-- slicing its bytes, once for each of the three a key holds.
UPDATE events SET dedup_key = CAST(substr(CAST(dedup_key AS BLOB), 1, instr(CAST(dedup_key AS BLOB), x'00') - 1) AS TEXT)
    || ' ' || CAST(substr(CAST(dedup_key AS BLOB), instr(CAST(dedup_key AS BLOB), x'00') + 1) AS TEXT)
WHERE instr(CAST(dedup_key AS BLOB), x'00') > 0;
UPDATE events SET dedup_key = CAST(substr(CAST(dedup_key AS BLOB), 1, instr(CAST(dedup_key AS BLOB), x'00') - 1) AS TEXT)
    || ' ' || CAST(substr(CAST(dedup_key AS BLOB), instr(CAST(dedup_key AS BLOB), x'00') + 1) AS TEXT)
WHERE instr(CAST(dedup_key AS BLOB), x'00') > 0;
UPDATE events SET dedup_key = CAST(substr(CAST(dedup_key AS BLOB), 1, instr(CAST(dedup_key AS BLOB), x'00') - 1) AS TEXT)
    || ' ' || CAST(substr(CAST(dedup_key AS BLOB), instr(CAST(dedup_key AS BLOB), x'00') + 1) AS TEXT)
WHERE instr(CAST(dedup_key AS BLOB), x'00') > 0;
