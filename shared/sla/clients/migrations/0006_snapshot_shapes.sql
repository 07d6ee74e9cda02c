-- A snapshot's JSON, about 1,000 bytes, was most of each row, and a write of
-- snapshots pays for its bytes twice, in the table and in the WAL. What an SLO's
-- definition decides (objective, window, method, burn windows, alert rows) is now
-- stored once per distinct shape; a row keeps its measured numbers, packed, and
-- the columns below. A row is about 250 bytes; 100,000 of them took 35 MB instead
-- of 124 MB, and were written in about half the time.
CREATE TABLE snapshot_shapes (
    shape      bytea PRIMARY KEY,
    definition text  NOT NULL
);

-- Rows written before keep their JSON in snapshot and are read from it.
ALTER TABLE budget_snapshots
    ALTER COLUMN snapshot DROP NOT NULL,
    ADD COLUMN shape          bytea,
    ADD COLUMN figures        bytea,
    ADD COLUMN exhaustion_eta timestamptz,
    ADD COLUMN window_start   timestamptz,
    ADD COLUMN reason         text,
    ADD COLUMN notes          text[],
    ADD CONSTRAINT budget_snapshots_one_layout CHECK (
        (snapshot IS NOT NULL AND shape IS NULL AND figures IS NULL)
        OR (snapshot IS NULL AND shape IS NOT NULL AND figures IS NOT NULL)
    );
