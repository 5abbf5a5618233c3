-- Vouch schema, SQLite flavour. Timestamps are unix seconds (INTEGER).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE environments (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id),
    publishable_key TEXT NOT NULL UNIQUE,
    settings        TEXT NOT NULL,          -- JSON: name, mode, enforcement, origins, limits
    unsigned_count  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE secrets (
    id         TEXT PRIMARY KEY,
    env_id     TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    ciphertext BLOB NOT NULL,               -- sealed under the master key
    imported   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    revoke_reason TEXT
);
CREATE INDEX secrets_env ON secrets(env_id);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    ciphertext BLOB NOT NULL,               -- sealed Ed25519 seed
    public_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER                      -- no longer signs; published until retired_at + max TTL
);

CREATE TABLE users (
    env_id              TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    id                  TEXT NOT NULL,
    verified            INTEGER NOT NULL,
    ever_verified       INTEGER NOT NULL,
    verified_by         TEXT,
    key_id              TEXT,
    verified_at         INTEGER,
    attributes          TEXT NOT NULL,
    verified_attributes TEXT NOT NULL,
    counted_unsigned    INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (env_id, id)
);
CREATE INDEX users_env_verified ON users(env_id, verified, id);

CREATE TABLE companies (
    env_id      TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    verified    INTEGER NOT NULL,
    key_id      TEXT,
    verified_at INTEGER,
    attributes  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (env_id, id)
);

CREATE TABLE memberships (
    env_id     TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    company_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (env_id, user_id, company_id)
);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    env_id     TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    user_id    TEXT,
    visitor_id TEXT,
    name       TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_env ON events(env_id, seq);

CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    env_id     TEXT,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    key_id     TEXT,
    detail     TEXT NOT NULL,               -- JSON, never a secret
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_env ON audit(env_id, seq);

CREATE TABLE identify_stats (
    env_id     TEXT NOT NULL,
    minute     INTEGER NOT NULL,
    verified   INTEGER NOT NULL DEFAULT 0,
    unverified INTEGER NOT NULL DEFAULT 0,
    rejected   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (env_id, minute)
);

CREATE TABLE used_jtis (
    env_id     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (env_id, jti)
);
