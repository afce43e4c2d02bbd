-- Days asked for through the daemon (a webhook's run request, the API's trigger and re-run), each
-- kept until an evaluation of it ends: a daemon that dies first loses none, another
-- replica or the restarted one takes them (orchestrator.daemon.asking).
CREATE TABLE asked (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    day DATE NOT NULL,
    replica TEXT NOT NULL,
    -- A re-run: the run's task, fingerprint and generation, all three or none.
    rerun_task TEXT,
    rerun_fingerprint TEXT,
    rerun_generation INTEGER,
    asked_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
