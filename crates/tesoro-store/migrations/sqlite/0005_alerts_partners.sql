-- Policies, alerts and partner exchange.
-- Keep in step with migrations/postgres/0005_alerts_partners.sql: same tables, same columns.

-- Every policy file ever imported; the newest is in force (`tesoro policy import`).
CREATE TABLE policy_sets (
    id          INTEGER PRIMARY KEY,
    text        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    source      TEXT NOT NULL,
    imported_at TEXT NOT NULL
);

-- The alert outbox: one row per violation ever seen, keyed by the violation's id. A row is
-- delivered only after the webhook answered 2xx; until then every run retries it.
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    rule            TEXT NOT NULL,
    entity          TEXT NOT NULL,
    since_height    INTEGER NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_at    TEXT
);
CREATE INDEX alerts_pending ON alerts (delivered_at, seq);

-- Partner offices whose signed bundles tesoro accepts.
CREATE TABLE partners (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL UNIQUE,
    added_at   TEXT NOT NULL
);

-- Imported bundles and their files: read-only once written (the triggers refuse changes).
CREATE TABLE bundles (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,
    partner_id  INTEGER NOT NULL REFERENCES partners (id),
    public_key  TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    signature   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);

CREATE TABLE bundle_files (
    bundle_id INTEGER NOT NULL REFERENCES bundles (id),
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    sha256    TEXT NOT NULL,
    content   BLOB NOT NULL,
    PRIMARY KEY (bundle_id, position)
);

CREATE TRIGGER bundles_read_only_update BEFORE UPDATE ON bundles
BEGIN SELECT RAISE(ABORT, 'imported bundles are read-only'); END;
CREATE TRIGGER bundles_read_only_delete BEFORE DELETE ON bundles
BEGIN SELECT RAISE(ABORT, 'imported bundles are read-only'); END;
CREATE TRIGGER bundle_files_read_only_update BEFORE UPDATE ON bundle_files
BEGIN SELECT RAISE(ABORT, 'imported bundles are read-only'); END;
CREATE TRIGGER bundle_files_read_only_delete BEFORE DELETE ON bundle_files
BEGIN SELECT RAISE(ABORT, 'imported bundles are read-only'); END;
