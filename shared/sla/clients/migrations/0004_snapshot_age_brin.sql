-- Snapshots arrive in evaluation order, so the table's physical order follows
-- evaluated_at and a BRIN index (a few pages for the whole table) serves the
-- retention delete as well as the btree did. Keeping that btree current cost
-- about a tenth of every snapshot write.
DROP INDEX budget_snapshots_evaluated_at;
CREATE INDEX budget_snapshots_evaluated_at ON budget_snapshots
    USING brin (evaluated_at);
