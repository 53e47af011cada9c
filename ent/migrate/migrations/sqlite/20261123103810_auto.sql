-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_agents" table
CREATE TABLE `new_agents` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL DEFAULT (''), `hostname` text NOT NULL DEFAULT (''), `credential_hash` blob NOT NULL, `version` text NOT NULL DEFAULT (''), `last_heartbeat_at` datetime NULL, `revoked_at` datetime NULL, `recent_batches` json NULL, `buffered_batches` integer NOT NULL DEFAULT (0), `tenant_id` integer NOT NULL, `registration_token_agents` integer NULL, CONSTRAINT `agents_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `agents_registration_tokens_agents` FOREIGN KEY (`registration_token_agents`) REFERENCES `registration_tokens` (`id`) ON DELETE SET NULL);
-- Set sequence for "new_agents" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_agents", 4294967296);
-- Copy rows from old table "agents" to new temporary table "new_agents"
INSERT INTO `new_agents` (`id`, `created_at`, `updated_at`, `name`, `hostname`, `credential_hash`, `version`, `last_heartbeat_at`, `revoked_at`, `tenant_id`, `registration_token_agents`) SELECT `id`, `created_at`, `updated_at`, `name`, `hostname`, `credential_hash`, `version`, `last_heartbeat_at`, `revoked_at`, `tenant_id`, `registration_token_agents` FROM `agents`;
-- Drop "agents" table after copying rows
DROP TABLE `agents`;
-- Rename temporary table "new_agents" to "agents"
ALTER TABLE `new_agents` RENAME TO `agents`;
-- Create index "agents_credential_hash_key" to table: "agents"
CREATE UNIQUE INDEX `agents_credential_hash_key` ON `agents` (`credential_hash`);
-- Create index "agent_tenant_id" to table: "agents"
CREATE INDEX `agent_tenant_id` ON `agents` (`tenant_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
