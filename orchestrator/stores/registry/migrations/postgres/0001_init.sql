-- The partition registry on PostgreSQL: one immutable row per published revision.
-- seq is the change feed's cursor. An identity column never reuses a value; gaps
-- (a rolled-back insert) are harmless because readers ask for seq > cursor.
-- Publishers serialise on an advisory lock (see registry_pg.py) so that seqs also
-- become visible in order, which the feed relies on.
CREATE TABLE revisions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    endpoint TEXT NOT NULL,
    partition TEXT NOT NULL,
    uri TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL,        -- UTC, milliseconds (as the embedded registry)
    lineage TEXT[] NOT NULL DEFAULT '{}' -- revision ids this one was built from
);

CREATE INDEX revisions_by_partition ON revisions (endpoint, partition, seq);
