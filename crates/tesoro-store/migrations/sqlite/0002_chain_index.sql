-- The chain index: blocks of the best chain from where the scan started, and for watched
-- scripts only, the outputs created and spent with their transactions. Keyed by block
-- height/hash and outpoint so every apply is idempotent and a reorg undo is exact.
-- Keep in step with migrations/postgres/0002_chain_index.sql.

CREATE TABLE blocks (
    height    INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL UNIQUE,
    prev_hash BLOB NOT NULL,
    time      INTEGER NOT NULL
);
CREATE INDEX blocks_time ON blocks (time);

CREATE TABLE txs (
    txid     BLOB PRIMARY KEY,
    height   INTEGER NOT NULL REFERENCES blocks (height),
    tx_index INTEGER NOT NULL,
    raw      BLOB NOT NULL
);
CREATE INDEX txs_height ON txs (height);

CREATE TABLE outputs (
    txid             BLOB NOT NULL,
    vout             INTEGER NOT NULL,
    value            INTEGER NOT NULL CHECK (value >= 0),
    script_pubkey    BLOB NOT NULL,
    wallet_id        INTEGER NOT NULL REFERENCES wallets (id),
    keychain         INTEGER,
    derivation_index INTEGER,
    coinbase         INTEGER NOT NULL,
    height           INTEGER NOT NULL REFERENCES blocks (height),
    tx_index         INTEGER NOT NULL,
    spent_txid       BLOB,
    spent_vin        INTEGER,
    spent_height     INTEGER REFERENCES blocks (height),
    PRIMARY KEY (txid, vout)
);
CREATE INDEX outputs_height ON outputs (height);
CREATE INDEX outputs_spent_height ON outputs (spent_height);
CREATE INDEX outputs_wallet ON outputs (wallet_id);
CREATE INDEX outputs_script ON outputs (script_pubkey);

-- How far each wallet has been scanned: a wallet added after a sync is caught up from its
-- birth height before the sync goes on with everything.
CREATE TABLE wallet_sync (
    wallet_id INTEGER PRIMARY KEY REFERENCES wallets (id),
    synced_to INTEGER NOT NULL
);
