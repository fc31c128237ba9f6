-- Reports at scale (issue 4): classification kept with the movements, so holdings and the
-- accumulation test are SQL aggregates and cost-basis methods stream rows in chain order.
-- Keep in step with migrations/sqlite/0007_ledger_lots.sql: same columns.

-- The final classification of a movement when it is not the chain's own (a rule, a matched
-- record or a manual override): NULL means "as the chain says" (chain_kind). Written by
-- the classification refresh, which clears and rewrites these columns whenever the
-- movements, records, overrides, rules or matching tolerance change.
ALTER TABLE ledger_movements ADD COLUMN kind TEXT;
ALTER TABLE ledger_movements ADD COLUMN source TEXT;
ALTER TABLE ledger_movements ADD COLUMN note TEXT;
ALTER TABLE ledger_movements ADD COLUMN record_id BIGINT;

-- Period reports (accumulation, movements --from/--to) read a time range.
CREATE INDEX ledger_movements_time ON ledger_movements (time, entity_id);
-- Records matched / unmatched.
CREATE INDEX ledger_movements_record ON ledger_movements (record_id);
-- Custodial holdings at a day.
CREATE INDEX ledger_records_kind_day ON ledger_records (kind, day);
