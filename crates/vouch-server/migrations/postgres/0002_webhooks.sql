-- Webhook endpoints and the durable outbox (same tables as
-- migrations/sqlite/0002_webhooks.sql).
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    env_id          TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    event_types     TEXT,                   -- JSON array; NULL = every type
    secrets         BYTEA NOT NULL,         -- sealed JSON [{value, expires_at}]
    disabled_at     BIGINT,
    disabled_reason TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_env ON webhook_endpoints(env_id);

-- One row per event: the body every endpoint receives, under one webhook-id.
CREATE TABLE webhook_messages (
    id         TEXT PRIMARY KEY,
    env_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_messages_env ON webhook_messages(env_id, created_at);

-- One row per (message, endpoint). status: pending | delivered | dead | held.
-- A claim (SELECT … FOR UPDATE SKIP LOCKED, so no two nodes take the same row)
-- bumps attempts and moves next_attempt_at to the next retry first, so a
-- delivery cut short by a crash is retried on the normal schedule.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,        -- unix milliseconds
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    seq           BIGSERIAL PRIMARY KEY,
    delivery_id   TEXT NOT NULL,
    endpoint_id   TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    message_id    TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    status_code   BIGINT,
    latency_ms    BIGINT NOT NULL,
    response      TEXT,
    error         TEXT,
    next_retry_at BIGINT,                   -- unix milliseconds, NULL when done
    created_at    BIGINT NOT NULL           -- unix milliseconds
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts(endpoint_id, seq);
