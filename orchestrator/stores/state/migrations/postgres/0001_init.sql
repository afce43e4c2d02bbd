-- Runs on PostgreSQL: one row per (task, fingerprint); attempt is the fencing token.
-- Same columns as the SQLite store's, with real timestamps (UTC, milliseconds).
CREATE TABLE runs (
    id TEXT PRIMARY KEY,             -- uuid4
    task_id TEXT NOT NULL,
    family TEXT NOT NULL,
    partition TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (
        state IN ('waiting', 'ready', 'running', 'publishing', 'succeeded', 'failed')
    ),
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    job_id TEXT,
    error TEXT,
    inputs JSONB NOT NULL DEFAULT '[]',    -- [[key, ref, revision_id], ...]
    outputs JSONB NOT NULL DEFAULT '{}',   -- {name: version published}
    staged JSONB NOT NULL DEFAULT '{}',    -- {name: ref}, recorded before the job starts
    lease_owner TEXT,
    lease_expires TIMESTAMPTZ,
    created TIMESTAMPTZ NOT NULL,
    updated TIMESTAMPTZ NOT NULL,
    started TIMESTAMPTZ,
    finished TIMESTAMPTZ,
    -- Insertion order: breaks ties between runs created in the same millisecond.
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    -- Bumped on every write, from a sequence: "most recently written" without trusting
    -- clocks to differ. Two transactions writing at once may commit in the other order
    -- than their numbers; each run's own writes are serialised by its row lock.
    touched BIGINT NOT NULL,
    UNIQUE (task_id, fingerprint)
);

CREATE SEQUENCE runs_touched;
CREATE INDEX runs_by_task ON runs (task_id, touched);
CREATE INDEX runs_by_state ON runs (state, created);
CREATE INDEX runs_by_created ON runs (created, seq);
