-- One data version for everything the public sees (issue 6): the public pages and the
-- public summary are served from memory and rebuilt when this moves. 'published' counts
-- changes to what a transparency page shows besides the ledger's sources: signed statements,
-- proofs of control, wallet tiers and the addresses listed per wallet. With 'chain',
-- 'class' and 'prices' (0008) it covers every table a public page reads, so the server's
-- version watcher asks one four-row table once a second instead of counting big tables.
-- Keep in step with migrations/sqlite/0009_published_version.sql.
INSERT INTO ledger_versions (name, n) VALUES ('published', 1);
-- Statement-level, as in 0008 (ledger_bump and ledger_bump_row are defined there).
CREATE TRIGGER statements_bump_insert AFTER INSERT ON statements
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER statements_bump_update AFTER UPDATE ON statements
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER statements_bump_delete AFTER DELETE ON statements
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER statements_bump_truncate AFTER TRUNCATE ON statements
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('published');
CREATE TRIGGER proofs_bump_insert AFTER INSERT ON proofs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER proofs_bump_update AFTER UPDATE ON proofs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER proofs_bump_delete AFTER DELETE ON proofs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER proofs_bump_truncate AFTER TRUNCATE ON proofs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('published');
CREATE TRIGGER wallet_tiers_bump_insert AFTER INSERT ON wallet_tiers
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER wallet_tiers_bump_update AFTER UPDATE ON wallet_tiers
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER wallet_tiers_bump_delete AFTER DELETE ON wallet_tiers
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER wallet_tiers_bump_truncate AFTER TRUNCATE ON wallet_tiers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('published');
CREATE TRIGGER wallet_addresses_bump_insert AFTER INSERT ON wallet_addresses
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER wallet_addresses_bump_update AFTER UPDATE ON wallet_addresses
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER wallet_addresses_bump_delete AFTER DELETE ON wallet_addresses
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump('published');
CREATE TRIGGER wallet_addresses_bump_truncate AFTER TRUNCATE ON wallet_addresses
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump_row('published');
