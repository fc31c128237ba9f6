-- The server: users and their one grant (a role, optionally scoped to an entity and
-- everything below it), sessions, API tokens, login attempts for rate limiting, and the
-- hash-chained audit log. Keep in step with migrations/postgres/0004_server.sql.
-- Secrets are never stored: passwords as argon2id PHC strings, session ids and API tokens
-- as SHA-256 hex of the random value the client holds.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'accountant', 'auditor', 'viewer')),
    entity_id     INTEGER REFERENCES entities (id),
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    token_hash   TEXT NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Failed logins only; rows older than the window are deleted on the next attempt.
CREATE TABLE login_attempts (
    id       INTEGER PRIMARY KEY,
    ip       TEXT NOT NULL,
    username TEXT NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX login_attempts_ip ON login_attempts (ip, at);
CREATE INDEX login_attempts_user ON login_attempts (username, at);

-- Append-only. hash = sha256(prev_hash || canonical JSON of the row); seq has no gaps.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    before_json TEXT,
    after_json  TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
