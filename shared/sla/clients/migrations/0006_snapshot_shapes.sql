-- A snapshot's JSON, about 1,000 bytes, was most of each row, and a write of
-- snapshots pays for its bytes twice, in the table and in the WAL. What an SLO's
-- definition decides (objective, window, method, burn windows, alert rows) is now
-- stored once per distinct shape; a row keeps its measured numbers, packed, and
-- the columns below. A row of the store benchmark's snapshots is 320 bytes, not
-- 1,160; 100,000 of them take 39 MB of table and index, not 132 MB, and are
-- written in about 60 % of the time.
CREATE TABLE snapshot_shapes (
    shape      bytea PRIMARY KEY,
    definition text  NOT NULL
);

-- Rows written before keep their JSON in snapshot and are read from it. Each of
-- them meets the constraint (the new columns are empty), so it is not checked
-- against them: NOT VALID spares a scan of the whole table under this lock.
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
    ) NOT VALID;
