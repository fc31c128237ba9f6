-- Reports at scale, part 2 (issue 4): a change counter per kind of source data, bumped by
-- triggers in the same transaction as every write, so reports know whether the derived
-- movements, the stored classification and the lot sub-ledger are current without scanning
-- the million-row tables; and the lot sub-ledger itself.
-- Keep in step with migrations/sqlite/0008_ledger_versions.sql: same tables, same columns.

-- 'chain': blocks, txs, outputs, wallets, entities (what movements are derived from).
-- 'class': off-chain records, manual overrides, the rules file (what classification adds).
-- 'prices': BTC prices and FX rates (what costs and proceeds are valued with).
-- Triggers, not application code, bump them: a write path added later cannot forget to.
CREATE TABLE ledger_versions (
    name TEXT PRIMARY KEY,
    n    BIGINT NOT NULL
);
INSERT INTO ledger_versions (name, n) VALUES ('chain', 1), ('class', 1), ('prices', 1);

-- Statement-level triggers (one bump per statement, not per row), and only when the
-- statement changed rows: the transition table tells.
CREATE FUNCTION ledger_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE ledger_versions SET n = n + 1 WHERE name = TG_ARGV[0];
    END IF;
    RETURN NULL;
END;
$$;
CREATE FUNCTION ledger_bump_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_versions SET n = n + 1 WHERE name = TG_ARGV[0];
    RETURN NULL;
END;
$$;
CREATE TRIGGER blocks_bump_insert AFTER INSERT ON blocks
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER blocks_bump_update AFTER UPDATE ON blocks
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER blocks_bump_delete AFTER DELETE ON blocks
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER blocks_bump_truncate AFTER TRUNCATE ON blocks
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('chain');
CREATE TRIGGER txs_bump_insert AFTER INSERT ON txs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER txs_bump_update AFTER UPDATE ON txs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER txs_bump_delete AFTER DELETE ON txs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER txs_bump_truncate AFTER TRUNCATE ON txs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('chain');
CREATE TRIGGER outputs_bump_insert AFTER INSERT ON outputs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER outputs_bump_update AFTER UPDATE ON outputs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER outputs_bump_delete AFTER DELETE ON outputs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER outputs_bump_truncate AFTER TRUNCATE ON outputs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('chain');
CREATE TRIGGER wallets_bump_insert AFTER INSERT ON wallets
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER wallets_bump_update AFTER UPDATE ON wallets
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER wallets_bump_delete AFTER DELETE ON wallets
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER wallets_bump_truncate AFTER TRUNCATE ON wallets
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('chain');
CREATE TRIGGER entities_bump_insert AFTER INSERT ON entities
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER entities_bump_update AFTER UPDATE ON entities
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER entities_bump_delete AFTER DELETE ON entities
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('chain');
CREATE TRIGGER entities_bump_truncate AFTER TRUNCATE ON entities
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('chain');
CREATE TRIGGER ledger_records_bump_insert AFTER INSERT ON ledger_records
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('class');
CREATE TRIGGER ledger_records_bump_update AFTER UPDATE ON ledger_records
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('class');
CREATE TRIGGER ledger_records_bump_delete AFTER DELETE ON ledger_records
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('class');
CREATE TRIGGER ledger_records_bump_truncate AFTER TRUNCATE ON ledger_records
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('class');
CREATE TRIGGER ledger_overrides_bump_insert AFTER INSERT ON ledger_overrides
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('class');
CREATE TRIGGER ledger_overrides_bump_update AFTER UPDATE ON ledger_overrides
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('class');
CREATE TRIGGER ledger_overrides_bump_delete AFTER DELETE ON ledger_overrides
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('class');
CREATE TRIGGER ledger_overrides_bump_truncate AFTER TRUNCATE ON ledger_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('class');
CREATE TRIGGER prices_bump_insert AFTER INSERT ON prices
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('prices');
CREATE TRIGGER prices_bump_update AFTER UPDATE ON prices
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('prices');
CREATE TRIGGER prices_bump_delete AFTER DELETE ON prices
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('prices');
CREATE TRIGGER prices_bump_truncate AFTER TRUNCATE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('prices');
CREATE TRIGGER fx_rates_bump_insert AFTER INSERT ON fx_rates
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('prices');
CREATE TRIGGER fx_rates_bump_update AFTER UPDATE ON fx_rates
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('prices');
CREATE TRIGGER fx_rates_bump_delete AFTER DELETE ON fx_rates
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('prices');
CREATE TRIGGER fx_rates_bump_truncate AFTER TRUNCATE ON fx_rates
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('prices');
CREATE TRIGGER ledger_rules_bump_insert AFTER INSERT ON ledger_state
    FOR EACH ROW WHEN (NEW.key = 'rules') EXECUTE FUNCTION ledger_bump_row('class');
CREATE TRIGGER ledger_rules_bump_update AFTER UPDATE ON ledger_state
    FOR EACH ROW WHEN (NEW.key = 'rules' AND NEW.value <> OLD.value) EXECUTE FUNCTION ledger_bump_row('class');
CREATE TRIGGER ledger_rules_bump_delete AFTER DELETE ON ledger_state
    FOR EACH ROW WHEN (OLD.key = 'rules') EXECUTE FUNCTION ledger_bump_row('class');

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
