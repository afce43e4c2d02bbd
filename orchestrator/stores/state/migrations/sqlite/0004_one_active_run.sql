-- One active run per task, whatever its inputs: a claim for newer inputs supersedes an
-- active run of older ones (or waits for one that began publishing). Earlier versions
-- could leave several active; all but the most recently written become superseded.
UPDATE runs SET state = 'superseded', lease_owner = NULL, lease_expires = NULL,
    error = 'superseded when one active run per task became the rule',
    finished = COALESCE(finished, updated)
WHERE state IN ('running', 'publishing') AND EXISTS (
    SELECT 1 FROM runs AS newer
    WHERE newer.task_id = runs.task_id AND newer.state IN ('running', 'publishing')
      AND newer.touched > runs.touched
);
CREATE UNIQUE INDEX runs_one_active ON runs (task_id) WHERE state IN ('running', 'publishing');
-- generation: fresh starts of one (task, fingerprint); a takeover continues the same one.
ALTER TABLE runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1);
-- failures: failed executions so far, for the retry policy.
ALTER TABLE runs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0);
