-- Webhook delivery ids, each until its expiry on the database's clock: a delivery is
-- accepted once by all the daemon replicas, and a restart forgets none (see
-- orchestrator.web.signing).
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    expires TIMESTAMPTZ NOT NULL
);
-- Expired ids are deleted on every delivery: the index keeps that to the expired rows.
CREATE INDEX deliveries_by_expiry ON deliveries (expires);
