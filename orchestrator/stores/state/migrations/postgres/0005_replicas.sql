-- The live daemon replicas, each until its heartbeat's expiry on the database's clock:
-- they split the watched partitions between them (orchestrator.daemon.membership).
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    expires TIMESTAMPTZ NOT NULL
);
