-- A backfill the daemon runs records its workflow, its days at once and the replica
-- running it, so that another replica takes it over when that one is gone. A backfill
-- of `charon backfill` has neither ('' and 0): it is resumed by running it again. A
-- backfill can be cancelled, a state of its own. SQLite changes no CHECK in place: both
-- tables are built anew, the days' table first gone so that no row refers to nothing.
CREATE TABLE backfills_new (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    date_interval TEXT NOT NULL,
    run_order TEXT NOT NULL CHECK (run_order IN ('oldest', 'newest')),
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    total INTEGER NOT NULL CHECK (total >= 1),
    created TEXT NOT NULL,    -- ISO-8601 UTC with milliseconds, so it sorts as text
    updated TEXT NOT NULL,
    workflow TEXT NOT NULL DEFAULT '',
    max_parallel INTEGER NOT NULL DEFAULT 0 CHECK (max_parallel >= 0),
    owner TEXT NOT NULL DEFAULT ''
);
INSERT INTO backfills_new (id, key, task, date_interval, run_order, state, total, created,
                           updated)
    SELECT id, key, task, date_interval, run_order, state, total, created, updated
    FROM backfills ORDER BY rowid;
CREATE TABLE backfill_days_new (
    backfill_id TEXT NOT NULL REFERENCES backfills_new (id),
    day TEXT NOT NULL,        -- YYYY-MM-DD
    status TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (backfill_id, day)
);
INSERT INTO backfill_days_new (backfill_id, day, status, updated)
    SELECT backfill_id, day, status, updated FROM backfill_days;
DROP TABLE backfill_days;
DROP TABLE backfills;
-- Renamed, backfills_new takes its days' reference to it along.
ALTER TABLE backfills_new RENAME TO backfills;
ALTER TABLE backfill_days_new RENAME TO backfill_days;
CREATE INDEX backfills_by_created ON backfills (created);
