-- A backfill the daemon runs records its workflow, its days at once and the replica
-- running it, so that another replica takes it over when that one is gone. A backfill
-- of `charon backfill` has neither ('' and 0): it is resumed by running it again. A
-- backfill can be cancelled, a state of its own.
ALTER TABLE backfills
    DROP CONSTRAINT backfills_state_check,
    ADD CONSTRAINT backfills_state_check
        CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    ADD COLUMN workflow TEXT NOT NULL DEFAULT '',
    ADD COLUMN max_parallel INTEGER NOT NULL DEFAULT 0 CHECK (max_parallel >= 0),
    ADD COLUMN owner TEXT NOT NULL DEFAULT '';
