-- The live daemon replicas and what each watches (a workflow's name and a digest of
-- its definition), each until its heartbeat's expiry: the replicas watching a workflow
-- alike split its days (orchestrator.daemon.membership).
CREATE TABLE replicas (
    id TEXT NOT NULL,
    watched TEXT NOT NULL,
    expires TEXT NOT NULL,   -- ISO-8601 UTC with milliseconds, so it sorts as text
    PRIMARY KEY (id, watched)
);
