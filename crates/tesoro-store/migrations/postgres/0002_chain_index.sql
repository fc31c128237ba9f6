-- The chain index: blocks of the best chain from where the scan started, and for watched
-- scripts only, the outputs created and spent with their transactions. Keyed by block
-- height/hash and outpoint so every apply is idempotent and a reorg undo is exact.
-- Keep in step with migrations/sqlite/0002_chain_index.sql.

CREATE TABLE blocks (
    height    BIGINT PRIMARY KEY,
    hash      BYTEA NOT NULL UNIQUE,
    prev_hash BYTEA NOT NULL,
    time      BIGINT NOT NULL
);
CREATE INDEX blocks_time ON blocks (time);

CREATE TABLE txs (
    txid     BYTEA PRIMARY KEY,
    height   BIGINT NOT NULL REFERENCES blocks (height),
    tx_index BIGINT NOT NULL,
    raw      BYTEA NOT NULL
);
CREATE INDEX txs_height ON txs (height);

CREATE TABLE outputs (
    txid             BYTEA NOT NULL,
    vout             BIGINT NOT NULL,
    value            BIGINT NOT NULL CHECK (value >= 0),
    script_pubkey    BYTEA NOT NULL,
    wallet_id        BIGINT NOT NULL REFERENCES wallets (id),
    keychain         BIGINT,
    derivation_index BIGINT,
    coinbase         BIGINT NOT NULL,
    height           BIGINT NOT NULL REFERENCES blocks (height),
    tx_index         BIGINT NOT NULL,
    spent_txid       BYTEA,
    spent_vin        BIGINT,
    spent_height     BIGINT REFERENCES blocks (height),
    PRIMARY KEY (txid, vout)
);
CREATE INDEX outputs_height ON outputs (height);
CREATE INDEX outputs_spent_height ON outputs (spent_height);
CREATE INDEX outputs_wallet ON outputs (wallet_id);
CREATE INDEX outputs_script ON outputs (script_pubkey);

-- How far each wallet has been scanned: a wallet added after a sync is caught up from its
-- birth height before the sync goes on with everything.
CREATE TABLE wallet_sync (
    wallet_id BIGINT PRIMARY KEY REFERENCES wallets (id),
    synced_to BIGINT NOT NULL
);
