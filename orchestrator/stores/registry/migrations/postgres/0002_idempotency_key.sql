-- The key a publisher may send so that a retried publish gets the first revision back
-- (see registry_pg.py). NULL for a publish without one. Unique across the whole
-- registry: a key met again on another partition is refused, not replayed. It is
-- never selected with a revision, so the change feed and revisions stay as they were.
-- The index also settles two publishers racing with one key should the publish lock
-- ever be bypassed: the second insert fails rather than making a second revision.
ALTER TABLE revisions ADD COLUMN idempotency_key TEXT;

CREATE UNIQUE INDEX revisions_by_idempotency_key ON revisions (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
