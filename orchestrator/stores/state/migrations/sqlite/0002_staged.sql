-- Where a run's outputs are being written (fresh URIs, staging tables), recorded before
-- the job starts, so that a process taking over a crashed attempt can reattach to its
-- job, finish its publication, or clean up after it.
ALTER TABLE runs ADD COLUMN staged TEXT NOT NULL DEFAULT '{}';  -- JSON {name: ref}
