-- Same change as migrations/sqlite/0004_erasure.sql.
ALTER TABLE webhook_messages ADD COLUMN user_id TEXT COLLATE "C";
CREATE INDEX webhook_messages_user ON webhook_messages(env_id, user_id);
