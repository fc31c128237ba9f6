-- Statements and proofs of control. Keep in step with migrations/postgres/0006_statements.sql.

-- Every statement made, as signed: its canonical bytes (what the signature covers), the file
-- (statement, hash, signature) and where it is pinned. Keyed by its SHA-256, so saving the
-- same statement twice changes nothing.
CREATE TABLE statements (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,
    entity      TEXT NOT NULL,
    height      INTEGER NOT NULL,
    block_hash  TEXT NOT NULL,
    total_sats  INTEGER NOT NULL,
    canonical   TEXT NOT NULL,
    signed_json TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX statements_entity ON statements (entity, height);

-- Proofs of control the office's signers returned for a challenge (entity, block), checked
-- before they were stored. A proof is stored once per block (digest: SHA-256 of proof_json;
-- the JSON itself can pass PostgreSQL's index row limit).
CREATE TABLE proofs (
    id          INTEGER PRIMARY KEY,
    entity      TEXT NOT NULL,
    height      INTEGER NOT NULL,
    block_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('bip322', 'bip127')),
    subject     TEXT NOT NULL,
    proof_json  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    UNIQUE (entity, block_hash, digest)
);

-- Which wallets' addresses a statement lists (published, the default) or only counts
-- (private): office configuration.
CREATE TABLE wallet_tiers (
    wallet_id  INTEGER PRIMARY KEY REFERENCES wallets (id),
    tier       TEXT NOT NULL CHECK (tier IN ('published', 'private')),
    set_at     TEXT NOT NULL
);
