-- The identity model's second version (same changes as
-- migrations/sqlite/0003_identity_model.sql), and one counter row per minute.

ALTER TABLE memberships ADD COLUMN proven BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX memberships_company ON memberships(env_id, company_id);

ALTER TABLE environments ADD COLUMN sessions_revoked_at BIGINT;

CREATE TABLE deleted_users (
    env_id     TEXT NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, user_id)
);
CREATE INDEX events_user ON events(env_id, user_id);

ALTER TABLE admin_tokens ADD COLUMN name TEXT NOT NULL DEFAULT 'bootstrap';
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE admin_tokens ADD COLUMN environment_ids TEXT;

ALTER TABLE audit ADD COLUMN actor TEXT;
CREATE INDEX audit_env_kind ON audit(env_id, kind, seq);

-- Counts are now added up in memory and written once a second per node, so
-- the rows no longer need shards to spread contention.
CREATE TABLE identify_stats_merged (
    env_id     TEXT NOT NULL,
    minute     BIGINT NOT NULL,
    verified   BIGINT NOT NULL DEFAULT 0,
    unverified BIGINT NOT NULL DEFAULT 0,
    rejected   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (env_id, minute)
);
INSERT INTO identify_stats_merged (env_id, minute, verified, unverified, rejected)
    SELECT env_id, minute, SUM(verified), SUM(unverified), SUM(rejected)
    FROM identify_stats GROUP BY env_id, minute;
DROP TABLE identify_stats;
ALTER TABLE identify_stats_merged RENAME TO identify_stats;
