-- The live daemon replicas and what each watches (a workflow's name and a digest of
-- its definition), each until its heartbeat's expiry on the database's clock: the
-- replicas watching a workflow alike split its days (orchestrator.daemon.membership).
CREATE TABLE replicas (
    id TEXT NOT NULL,
    watched TEXT NOT NULL,
    expires TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (id, watched)
);
