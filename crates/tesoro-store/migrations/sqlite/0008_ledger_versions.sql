-- Reports at scale, part 2 (issue 4): a change counter per kind of source data, bumped by
-- triggers in the same transaction as every write, so reports know whether the derived
-- movements, the stored classification and the lot sub-ledger are current without scanning
-- the million-row tables; and the lot sub-ledger itself.
-- Keep in step with migrations/postgres/0008_ledger_versions.sql: same tables, same columns.

-- 'chain': blocks, txs, outputs, wallets, entities (what movements are derived from).
-- 'class': off-chain records, manual overrides, the rules file (what classification adds).
-- 'prices': BTC prices and FX rates (what costs and proceeds are valued with).
-- Triggers, not application code, bump them: a write path added later cannot forget to.
CREATE TABLE ledger_versions (
    name TEXT PRIMARY KEY,
    n    BIGINT NOT NULL
);
INSERT INTO ledger_versions (name, n) VALUES ('chain', 1), ('class', 1), ('prices', 1);
CREATE TRIGGER blocks_bump_insert AFTER INSERT ON blocks
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER blocks_bump_update AFTER UPDATE ON blocks
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER blocks_bump_delete AFTER DELETE ON blocks
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER txs_bump_insert AFTER INSERT ON txs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER txs_bump_update AFTER UPDATE ON txs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER txs_bump_delete AFTER DELETE ON txs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER outputs_bump_insert AFTER INSERT ON outputs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER outputs_bump_update AFTER UPDATE ON outputs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER outputs_bump_delete AFTER DELETE ON outputs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER wallets_bump_insert AFTER INSERT ON wallets
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER wallets_bump_update AFTER UPDATE ON wallets
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER wallets_bump_delete AFTER DELETE ON wallets
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER entities_bump_insert AFTER INSERT ON entities
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER entities_bump_update AFTER UPDATE ON entities
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER entities_bump_delete AFTER DELETE ON entities
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'chain'; END;
CREATE TRIGGER ledger_records_bump_insert AFTER INSERT ON ledger_records
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER ledger_records_bump_update AFTER UPDATE ON ledger_records
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER ledger_records_bump_delete AFTER DELETE ON ledger_records
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER ledger_overrides_bump_insert AFTER INSERT ON ledger_overrides
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER ledger_overrides_bump_update AFTER UPDATE ON ledger_overrides
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER ledger_overrides_bump_delete AFTER DELETE ON ledger_overrides
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER prices_bump_insert AFTER INSERT ON prices
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'prices'; END;
CREATE TRIGGER prices_bump_update AFTER UPDATE ON prices
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'prices'; END;
CREATE TRIGGER prices_bump_delete AFTER DELETE ON prices
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'prices'; END;
CREATE TRIGGER fx_rates_bump_insert AFTER INSERT ON fx_rates
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'prices'; END;
CREATE TRIGGER fx_rates_bump_update AFTER UPDATE ON fx_rates
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'prices'; END;
CREATE TRIGGER fx_rates_bump_delete AFTER DELETE ON fx_rates
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'prices'; END;
CREATE TRIGGER ledger_rules_bump_insert AFTER INSERT ON ledger_state WHEN NEW.key = 'rules'
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER ledger_rules_bump_update AFTER UPDATE ON ledger_state WHEN NEW.key = 'rules' AND NEW.value <> OLD.value
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;
CREATE TRIGGER ledger_rules_bump_delete AFTER DELETE ON ledger_state WHEN OLD.key = 'rules'
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'class'; END;

-- The lot sub-ledger, posted when the classification is current (see src/sub_ledger.rs):
-- per cost-basis method, fee rule, currency and entity, one row per run of consecutive
-- transactions (chain order) on one day: what was realized by them, and the entity's open
-- lots after the last of them (seq: its position in chain order). Amounts are exact
-- decimals as TEXT; day is the Julian day number of the block's UTC day.
CREATE TABLE ledger_lot_days (
    method             TEXT NOT NULL,
    fee_rule           TEXT NOT NULL,
    currency           TEXT NOT NULL,
    entity_id          BIGINT NOT NULL,
    seq                BIGINT NOT NULL,
    day                BIGINT NOT NULL,
    proceeds           TEXT NOT NULL,
    cost_disposed      TEXT NOT NULL,
    realized_disposals TEXT NOT NULL,
    realized_fees      TEXT NOT NULL,
    open_sats          BIGINT NOT NULL,
    open_cost          TEXT NOT NULL,
    market_sats        BIGINT NOT NULL,
    uncovered_sats     BIGINT NOT NULL,
    PRIMARY KEY (method, fee_rule, currency, entity_id, seq)
);
CREATE INDEX ledger_lot_days_day ON ledger_lot_days (method, fee_rule, currency, day);

-- Holdings at a height and the accumulation aggregates read these columns only.
CREATE INDEX ledger_movements_height_net ON ledger_movements (height, entity_id, received, sent);
-- (replaces 0007's ledger_movements_time, a prefix of it)
DROP INDEX ledger_movements_time;
CREATE INDEX ledger_movements_time_net ON ledger_movements (time, entity_id, received, sent);
