-- The user a webhook message is about (user.created, user.updated), so that
-- erasing the user also erases the payloads that still carry its attributes.
ALTER TABLE webhook_messages ADD COLUMN user_id TEXT;
CREATE INDEX webhook_messages_user ON webhook_messages(env_id, user_id);
