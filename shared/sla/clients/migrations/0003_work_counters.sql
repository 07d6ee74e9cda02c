-- Work counters of the functions (calculations, events published, Prometheus
-- queries, histogram buckets), kept in the store because a function scaled to zero
-- takes its process memory with it and is never scraped: budget-api exposes these
-- rows for the whole system. A row is one series: a metric name and a label set.
-- The label set is a JSON object of a few fixed label names (the writer refuses any
-- other) whose values are fixed words or catalogue names, so the table stays small:
-- its size is the number of series, never the amount of work.
CREATE TABLE work_counters (
    metric     text             NOT NULL CHECK (metric ~ '^sla_[a-z0-9_]+$'),
    labels     jsonb            NOT NULL DEFAULT '{}'
                                CHECK (jsonb_typeof(labels) = 'object'),
    value      double precision NOT NULL DEFAULT 0 CHECK (value >= 0),
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, labels)
);
