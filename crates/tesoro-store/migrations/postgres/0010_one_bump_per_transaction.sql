-- The change counters move once per writing transaction, not once per statement.
--
-- PostgreSQL writes a new version of a row on every UPDATE, and the dead versions stay in
-- the table until the transaction ends: a sync transaction of 5,000 blocks bumped the
-- 'chain' row some 20,000 times, and each bump scanned every earlier version, so the cost
-- grew with the square of the batch (1,000 bumps in one transaction: 42 ms; 20,000:
-- 2.8 s). That made the chain-index import 7.5 times slower here than on SQLite, which
-- updates in place. Readers only ever see committed states, so one bump per transaction
-- tells them everything; a transaction-local setting remembers that it was made (and is
-- undone with a rolled-back savepoint, as the bump is).
-- migrations/sqlite/0010_one_bump_per_transaction.sql keeps the numbering in step.
CREATE OR REPLACE FUNCTION ledger_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tesoro.bumped_' || TG_ARGV[0], true) IS DISTINCT FROM 'yes' THEN
        IF EXISTS (SELECT 1 FROM changed) THEN
            UPDATE ledger_versions SET n = n + 1 WHERE name = TG_ARGV[0];
            PERFORM set_config('tesoro.bumped_' || TG_ARGV[0], 'yes', true);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION ledger_bump_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tesoro.bumped_' || TG_ARGV[0], true) IS DISTINCT FROM 'yes' THEN
        UPDATE ledger_versions SET n = n + 1 WHERE name = TG_ARGV[0];
        PERFORM set_config('tesoro.bumped_' || TG_ARGV[0], 'yes', true);
    END IF;
    RETURN NULL;
END;
$$;
