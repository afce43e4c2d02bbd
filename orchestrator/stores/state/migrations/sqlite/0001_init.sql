-- Runs: one row per (task, fingerprint); attempt is the fencing token.
-- Timestamps are ISO-8601 UTC with milliseconds, so they sort as text.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,             -- uuid4
    task_id TEXT NOT NULL,
    family TEXT NOT NULL,
    partition TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    job_id TEXT,
    error TEXT,
    inputs TEXT NOT NULL DEFAULT '[]',    -- JSON [[key, ref, revision_id], ...]
    outputs TEXT NOT NULL DEFAULT '{}',   -- JSON {name: uri}
    lease_owner TEXT,
    lease_expires TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    -- Bumped on every write: "most recently updated" without trusting clocks to differ.
    touched INTEGER NOT NULL DEFAULT 0,
    UNIQUE (task_id, fingerprint)
);

CREATE INDEX runs_by_task ON runs (task_id, touched);
CREATE INDEX runs_by_state ON runs (state, created);
