-- Webhook delivery ids, each until its expiry: a delivery is accepted once by all the
-- processes sharing the file, and a restart forgets none (see orchestrator.web.signing).
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    expires TEXT NOT NULL    -- ISO-8601 UTC with milliseconds, so it sorts as text
);
-- Expired ids are deleted on every delivery: the index keeps that to the expired rows.
CREATE INDEX deliveries_by_expiry ON deliveries (expires);
