-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_launches" table
CREATE TABLE `new_launches` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `kind` text NOT NULL, `status` text NOT NULL DEFAULT ('pending'), `instance_id` text NOT NULL DEFAULT (''), `checks` json NULL, `finished_at` datetime NULL, `message` text NOT NULL DEFAULT (''), `instances` json NULL, `console` text NOT NULL DEFAULT (''), `accel` text NOT NULL DEFAULT (''), `quiesced_at` datetime NULL, `healthy_at` datetime NULL, `downtime_seconds` real NULL, `source_resumed_at` datetime NULL, `instance_type` text NOT NULL DEFAULT (''), `sizing` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, `migration_launches` integer NOT NULL, `recovery_point_launches` integer NULL, CONSTRAINT `launches_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `launches_migrations_launches` FOREIGN KEY (`migration_launches`) REFERENCES `migrations` (`id`) ON DELETE NO ACTION, CONSTRAINT `launches_recovery_points_launches` FOREIGN KEY (`recovery_point_launches`) REFERENCES `recovery_points` (`id`) ON DELETE SET NULL);
-- Set sequence for "new_launches" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_launches", 42949672960);
-- Copy rows from old table "launches" to new temporary table "new_launches"
INSERT INTO `new_launches` (`id`, `created_at`, `updated_at`, `kind`, `status`, `instance_id`, `checks`, `finished_at`, `message`, `instances`, `console`, `accel`, `quiesced_at`, `healthy_at`, `downtime_seconds`, `source_resumed_at`, `tenant_id`, `migration_launches`, `recovery_point_launches`) SELECT `id`, `created_at`, `updated_at`, `kind`, `status`, `instance_id`, `checks`, `finished_at`, `message`, `instances`, `console`, `accel`, `quiesced_at`, `healthy_at`, `downtime_seconds`, `source_resumed_at`, `tenant_id`, `migration_launches`, `recovery_point_launches` FROM `launches`;
-- Drop "launches" table after copying rows
DROP TABLE `launches`;
-- Rename temporary table "new_launches" to "launches"
ALTER TABLE `new_launches` RENAME TO `launches`;
-- Create index "launch_tenant_id" to table: "launches"
CREATE INDEX `launch_tenant_id` ON `launches` (`tenant_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
