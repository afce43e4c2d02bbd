-- The live daemon replicas, each until its heartbeat's expiry: they split the watched
-- partitions between them (orchestrator.daemon.membership).
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    expires TEXT NOT NULL    -- ISO-8601 UTC with milliseconds, so it sorts as text
);
