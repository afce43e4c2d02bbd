-- The partition registry: one immutable row per published revision.
-- seq is the change feed's cursor; AUTOINCREMENT so a seq is never reused.
CREATE TABLE revisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    endpoint TEXT NOT NULL,
    partition TEXT NOT NULL,
    uri TEXT NOT NULL,
    created TEXT NOT NULL,   -- ISO-8601 UTC with milliseconds
    lineage TEXT NOT NULL DEFAULT '[]'   -- JSON array of revision ids
);

CREATE INDEX revisions_by_partition ON revisions (endpoint, partition, seq);
