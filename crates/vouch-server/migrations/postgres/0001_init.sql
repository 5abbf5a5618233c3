-- Vouch schema, PostgreSQL flavour: the same tables and columns as
-- migrations/sqlite/0001_init.sql (keep the two in step). Timestamps are unix
-- seconds (BIGINT); JSON documents are TEXT, as in SQLite, so both backends
-- read and write them the same way.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE environments (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id),
    publishable_key TEXT NOT NULL UNIQUE,
    settings        TEXT NOT NULL,          -- JSON: name, mode, enforcement, origins, limits
    unsigned_count  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE secrets (
    id         TEXT PRIMARY KEY,
    env_id     TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    ciphertext BYTEA NOT NULL,              -- sealed under the master key
    imported   BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    revoke_reason TEXT
);
CREATE INDEX secrets_env ON secrets(env_id);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    ciphertext BYTEA NOT NULL,              -- sealed Ed25519 seed
    public_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT                       -- no longer signs; published until retired_at + max TTL
);

CREATE TABLE users (
    env_id              TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    id                  TEXT COLLATE "C" NOT NULL, -- byte order, as in SQLite
    verified            BOOLEAN NOT NULL,
    ever_verified       BOOLEAN NOT NULL,
    verified_by         TEXT,
    key_id              TEXT,
    verified_at         BIGINT,
    attributes          TEXT NOT NULL,
    verified_attributes TEXT NOT NULL,
    counted_unsigned    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (env_id, id)
);
CREATE INDEX users_env_verified ON users(env_id, verified, id);

CREATE TABLE companies (
    env_id      TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    id          TEXT COLLATE "C" NOT NULL,
    verified    BOOLEAN NOT NULL,
    key_id      TEXT,
    verified_at BIGINT,
    attributes  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (env_id, id)
);

CREATE TABLE memberships (
    env_id     TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    company_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, user_id, company_id)
);

CREATE TABLE events (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    env_id     TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    user_id    TEXT,
    visitor_id TEXT,
    name       TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_env ON events(env_id, seq);

CREATE TABLE audit (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    env_id     TEXT,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    key_id     TEXT,
    detail     TEXT NOT NULL,               -- JSON, never a secret
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_env ON audit(env_id, seq);

-- `shard` spreads the counters of one busy minute over several rows, so that
-- concurrent identifies on many nodes do not queue on one row lock; readers
-- sum over it. (SQLite has a single writer and no such column.)
CREATE TABLE identify_stats (
    env_id     TEXT NOT NULL,
    minute     BIGINT NOT NULL,
    shard      SMALLINT NOT NULL DEFAULT 0,
    verified   BIGINT NOT NULL DEFAULT 0,
    unverified BIGINT NOT NULL DEFAULT 0,
    rejected   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (env_id, minute, shard)
);

CREATE TABLE used_jtis (
    env_id     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, jti)
);

-- PostgreSQL only: failed-verification counters shared by every node (a
-- single SQLite node keeps them in memory). One row per key and one-minute window.
CREATE TABLE rate_limits (
    key        TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    failures   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key, window_start)
);
