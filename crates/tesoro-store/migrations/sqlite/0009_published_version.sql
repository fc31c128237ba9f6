-- One data version for everything the public sees (issue 6): the public pages and the
-- public summary are served from memory and rebuilt when this moves. 'published' counts
-- changes to what a transparency page shows besides the ledger's sources: signed statements,
-- proofs of control, wallet tiers and the addresses listed per wallet. With 'chain',
-- 'class' and 'prices' (0008) it covers every table a public page reads, so the server's
-- version watcher asks one four-row table once a second instead of counting big tables.
-- Keep in step with migrations/postgres/0009_published_version.sql.
INSERT INTO ledger_versions (name, n) VALUES ('published', 1);
CREATE TRIGGER statements_bump_insert AFTER INSERT ON statements
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER statements_bump_update AFTER UPDATE ON statements
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER statements_bump_delete AFTER DELETE ON statements
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER proofs_bump_insert AFTER INSERT ON proofs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER proofs_bump_update AFTER UPDATE ON proofs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER proofs_bump_delete AFTER DELETE ON proofs
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER wallet_tiers_bump_insert AFTER INSERT ON wallet_tiers
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER wallet_tiers_bump_update AFTER UPDATE ON wallet_tiers
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER wallet_tiers_bump_delete AFTER DELETE ON wallet_tiers
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER wallet_addresses_bump_insert AFTER INSERT ON wallet_addresses
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER wallet_addresses_bump_update AFTER UPDATE ON wallet_addresses
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
CREATE TRIGGER wallet_addresses_bump_delete AFTER DELETE ON wallet_addresses
BEGIN UPDATE ledger_versions SET n = n + 1 WHERE name = 'published'; END;
