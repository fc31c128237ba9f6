-- The ledger: movements derived from the chain index, prices and FX rates, off-chain records,
-- manual classifications (append-only history) and ledger settings (rules file).
-- Keep in step with migrations/postgres/0003_ledger.sql: same tables, same columns.
-- Fiat amounts, prices and rates are exact decimals stored as TEXT, never floats.

-- Derived: rebuilt from outputs/txs whenever the chain index changes, so a reorg and a
-- re-sync give the same rows. Manual classifications live apart (ledger_overrides).
CREATE TABLE ledger_movements (
    txid           BLOB NOT NULL,
    entity_id      INTEGER NOT NULL REFERENCES entities (id),
    root_id        INTEGER NOT NULL REFERENCES entities (id),
    height         INTEGER NOT NULL,
    tx_index       INTEGER NOT NULL,
    time           INTEGER NOT NULL,
    received       INTEGER NOT NULL,
    sent           INTEGER NOT NULL,
    acquired       INTEGER NOT NULL,
    disposed       INTEGER NOT NULL,
    fee            INTEGER NOT NULL,
    internal_in    INTEGER NOT NULL,
    internal_out   INTEGER NOT NULL,
    inputs         INTEGER NOT NULL,
    outputs        INTEGER NOT NULL,
    coinbase       INTEGER NOT NULL,
    chain_kind     TEXT NOT NULL,
    counterparties TEXT NOT NULL,
    PRIMARY KEY (txid, entity_id)
);
CREATE INDEX ledger_movements_order ON ledger_movements (height, tx_index, txid, entity_id);

CREATE TABLE ledger_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE prices (
    day      TEXT NOT NULL,
    currency TEXT NOT NULL,
    price    TEXT NOT NULL,
    source   TEXT NOT NULL,
    PRIMARY KEY (day, currency)
);

CREATE TABLE fx_rates (
    day    TEXT NOT NULL,
    base   TEXT NOT NULL,
    quote  TEXT NOT NULL,
    rate   TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (day, base, quote)
);

CREATE TABLE ledger_records (
    id           INTEGER PRIMARY KEY,
    fingerprint  TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    entity_code  TEXT,
    day          TEXT NOT NULL,
    sats         INTEGER NOT NULL CHECK (sats >= 0),
    fiat         TEXT,
    currency     TEXT,
    counterparty TEXT,
    reference    TEXT,
    txid         BLOB,
    source       TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

-- Every manual classification ever made; the newest per (txid, entity) is in force.
CREATE TABLE ledger_overrides (
    id         INTEGER PRIMARY KEY,
    txid       BLOB NOT NULL,
    entity_id  INTEGER NOT NULL REFERENCES entities (id),
    kind       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ledger_overrides_tx ON ledger_overrides (txid, entity_id);
