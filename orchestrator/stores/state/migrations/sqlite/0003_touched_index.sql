-- Every write stamps touched = MAX(touched) + 1; without an index on touched alone that
-- maximum walks every row, so writes slowed down as the table grew.
CREATE INDEX runs_by_touched ON runs (touched);
