-- Backfills (`charon backfill`): one task's days over an interval. Running the same
-- command again finds its backfill by key and resumes it; each day keeps the status its
-- last evaluation ended in, so a resumed backfill skips the days already done and a UI
-- can show its progress.
CREATE TABLE backfills (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    date_interval TEXT NOT NULL,
    run_order TEXT NOT NULL CHECK (run_order IN ('oldest', 'newest')),
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    total INTEGER NOT NULL CHECK (total >= 1),
    created TEXT NOT NULL,    -- ISO-8601 UTC with milliseconds, so it sorts as text
    updated TEXT NOT NULL
);
CREATE INDEX backfills_by_created ON backfills (created);
CREATE TABLE backfill_days (
    backfill_id TEXT NOT NULL REFERENCES backfills (id),
    day TEXT NOT NULL,        -- YYYY-MM-DD
    status TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (backfill_id, day)
);
