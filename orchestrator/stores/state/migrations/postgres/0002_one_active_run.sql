-- One active run per task, whatever its inputs (see the SQLite store's 0004 for why the
-- existing extra active runs become superseded); the superseded state; generations and
-- failure counts for resumable publication and retries.
ALTER TABLE runs DROP CONSTRAINT runs_state_check;
ALTER TABLE runs ADD CONSTRAINT runs_state_check CHECK (
    state IN ('running', 'publishing', 'succeeded', 'failed', 'superseded')
);
UPDATE runs SET state = 'superseded', lease_owner = NULL, lease_expires = NULL,
    error = 'superseded when one active run per task became the rule',
    finished = COALESCE(finished, updated)
WHERE state IN ('running', 'publishing') AND EXISTS (
    SELECT 1 FROM runs AS newer
    WHERE newer.task_id = runs.task_id AND newer.state IN ('running', 'publishing')
      AND newer.touched > runs.touched
);
CREATE UNIQUE INDEX runs_one_active ON runs (task_id) WHERE state IN ('running', 'publishing');
ALTER TABLE runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1);
ALTER TABLE runs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0);
