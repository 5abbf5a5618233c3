-- The identity model's second version: proven memberships, session
-- revocation, erased users, scoped admin tokens and the acting token in audit.

-- Whether the group call that made a membership proved the company; once a
-- company is verified only proven memberships count.
ALTER TABLE memberships ADD COLUMN proven INTEGER NOT NULL DEFAULT 0;
CREATE INDEX memberships_company ON memberships(env_id, company_id);

-- Sessions issued at or before this instant (unix seconds) are refused.
ALTER TABLE environments ADD COLUMN sessions_revoked_at INTEGER;

-- Erased users: their sessions are refused until they could have expired.
CREATE TABLE deleted_users (
    env_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (env_id, user_id)
);
CREATE INDEX events_user ON events(env_id, user_id);

ALTER TABLE admin_tokens ADD COLUMN name TEXT NOT NULL DEFAULT 'bootstrap';
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
-- JSON array of environment ids; NULL = every environment.
ALTER TABLE admin_tokens ADD COLUMN environment_ids TEXT;

-- The admin token that made the change (NULL for the widget API and the server itself).
ALTER TABLE audit ADD COLUMN actor TEXT;
CREATE INDEX audit_env_kind ON audit(env_id, kind, seq);
