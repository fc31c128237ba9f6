-- The registry: which network this database follows, the entity tree and watch-only wallets.
-- Keep in step with migrations/postgres/0001_registry.sql: same tables, same columns.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE entities (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    parent_id  INTEGER REFERENCES entities (id),
    created_at TEXT NOT NULL
);

CREATE TABLE wallets (
    id                  INTEGER PRIMARY KEY,
    entity_id           INTEGER NOT NULL REFERENCES entities (id),
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('descriptor', 'addresses')),
    external_descriptor TEXT,
    internal_descriptor TEXT,
    gap_limit           INTEGER,
    birth_height        INTEGER,
    created_at          TEXT NOT NULL,
    UNIQUE (entity_id, name),
    CHECK ((kind = 'descriptor') = (external_descriptor IS NOT NULL))
);

-- Bare published addresses. A script is watched by at most one wallet, so no coin is
-- ever counted twice.
CREATE TABLE wallet_addresses (
    id            INTEGER PRIMARY KEY,
    wallet_id     INTEGER NOT NULL REFERENCES wallets (id),
    position      INTEGER NOT NULL,
    address       TEXT NOT NULL,
    script_pubkey BLOB NOT NULL UNIQUE,
    UNIQUE (wallet_id, position)
);
CREATE INDEX wallet_addresses_wallet ON wallet_addresses (wallet_id);
