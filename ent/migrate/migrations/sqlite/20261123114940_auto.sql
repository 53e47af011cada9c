-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_assessments" table
CREATE TABLE `new_assessments` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `target` text NOT NULL, `region` text NOT NULL DEFAULT (''), `readiness` text NOT NULL DEFAULT ('unknown'), `reasons` json NULL, `actions` json NULL, `instance_type` text NOT NULL DEFAULT (''), `monthly_cost_as_is` real NOT NULL DEFAULT (0), `monthly_cost_right_sized` real NOT NULL DEFAULT (0), `transfer_seconds` integer NOT NULL DEFAULT (0), `offline_seeding` bool NOT NULL DEFAULT (false), `missing` json NULL, `need_vcpus` integer NOT NULL DEFAULT (0), `need_memory_gib` real NOT NULL DEFAULT (0), `instance_type_as_is` text NOT NULL DEFAULT (''), `storage_monthly` real NOT NULL DEFAULT (0), `used_bytes` integer NOT NULL DEFAULT (0), `sizing_note` text NOT NULL DEFAULT (''), `seeding_note` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, `host_id` integer NOT NULL, CONSTRAINT `assessments_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `assessments_hosts_assessments` FOREIGN KEY (`host_id`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_assessments" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_assessments", 12884901888);
-- Copy rows from old table "assessments" to new temporary table "new_assessments"
INSERT INTO `new_assessments` (`id`, `created_at`, `updated_at`, `target`, `region`, `readiness`, `reasons`, `actions`, `instance_type`, `monthly_cost_as_is`, `monthly_cost_right_sized`, `transfer_seconds`, `offline_seeding`, `tenant_id`, `host_id`) SELECT `id`, `created_at`, `updated_at`, `target`, `region`, `readiness`, `reasons`, `actions`, `instance_type`, `monthly_cost_as_is`, `monthly_cost_right_sized`, `transfer_seconds`, `offline_seeding`, `tenant_id`, `host_id` FROM `assessments`;
-- Drop "assessments" table after copying rows
DROP TABLE `assessments`;
-- Rename temporary table "new_assessments" to "assessments"
ALTER TABLE `new_assessments` RENAME TO `assessments`;
-- Create index "assessment_tenant_id" to table: "assessments"
CREATE INDEX `assessment_tenant_id` ON `assessments` (`tenant_id`);
-- Create index "assessment_tenant_id_host_id_target" to table: "assessments"
CREATE UNIQUE INDEX `assessment_tenant_id_host_id_target` ON `assessments` (`tenant_id`, `host_id`, `target`);
-- Create index "assessment_tenant_id_readiness" to table: "assessments"
CREATE INDEX `assessment_tenant_id_readiness` ON `assessments` (`tenant_id`, `readiness`);
-- Create "new_launches" table
CREATE TABLE `new_launches` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `kind` text NOT NULL, `status` text NOT NULL DEFAULT ('pending'), `instance_id` text NOT NULL DEFAULT (''), `checks` json NULL, `finished_at` datetime NULL, `message` text NOT NULL DEFAULT (''), `instances` json NULL, `tenant_id` integer NOT NULL, `migration_launches` integer NOT NULL, `recovery_point_launches` integer NULL, CONSTRAINT `launches_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `launches_migrations_launches` FOREIGN KEY (`migration_launches`) REFERENCES `migrations` (`id`) ON DELETE NO ACTION, CONSTRAINT `launches_recovery_points_launches` FOREIGN KEY (`recovery_point_launches`) REFERENCES `recovery_points` (`id`) ON DELETE SET NULL);
-- Set sequence for "new_launches" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_launches", 42949672960);
-- Copy rows from old table "launches" to new temporary table "new_launches"
INSERT INTO `new_launches` (`id`, `created_at`, `updated_at`, `kind`, `status`, `instance_id`, `checks`, `finished_at`, `tenant_id`, `migration_launches`, `recovery_point_launches`) SELECT `id`, `created_at`, `updated_at`, `kind`, `status`, `instance_id`, `checks`, `finished_at`, `tenant_id`, `migration_launches`, `recovery_point_launches` FROM `launches`;
-- Drop "launches" table after copying rows
DROP TABLE `launches`;
-- Rename temporary table "new_launches" to "launches"
ALTER TABLE `new_launches` RENAME TO `launches`;
-- Create index "launch_tenant_id" to table: "launches"
CREATE INDEX `launch_tenant_id` ON `launches` (`tenant_id`);
-- Create "new_migrations" table
CREATE TABLE `new_migrations` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `state` text NOT NULL DEFAULT ('pending'), `failure_reason` text NOT NULL DEFAULT (''), `settings` json NULL, `bytes_total` integer NOT NULL DEFAULT (0), `bytes_done` integer NOT NULL DEFAULT (0), `rate_bps` integer NOT NULL DEFAULT (0), `lag_seconds` integer NOT NULL DEFAULT (0), `eta_seconds` integer NOT NULL DEFAULT (0), `last_sync_at` datetime NULL, `disks` json NULL, `sync_pass` integer NOT NULL DEFAULT (0), `sync_requested_at` datetime NULL, `command_sent_at` datetime NULL, `last_error` text NOT NULL DEFAULT (''), `state_changed_at` datetime NULL, `cloud_account_migrations` integer NULL, `host_id` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `migrations_cloud_accounts_migrations` FOREIGN KEY (`cloud_account_migrations`) REFERENCES `cloud_accounts` (`id`) ON DELETE SET NULL, CONSTRAINT `migrations_hosts_migrations` FOREIGN KEY (`host_id`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `migrations_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_migrations" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_migrations", 47244640256);
-- Copy rows from old table "migrations" to new temporary table "new_migrations"
INSERT INTO `new_migrations` (`id`, `created_at`, `updated_at`, `state`, `failure_reason`, `settings`, `bytes_total`, `bytes_done`, `rate_bps`, `lag_seconds`, `eta_seconds`, `last_sync_at`, `cloud_account_migrations`, `host_id`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `state`, `failure_reason`, `settings`, `bytes_total`, `bytes_done`, `rate_bps`, `lag_seconds`, `eta_seconds`, `last_sync_at`, `cloud_account_migrations`, `host_id`, `tenant_id` FROM `migrations`;
-- Drop "migrations" table after copying rows
DROP TABLE `migrations`;
-- Rename temporary table "new_migrations" to "migrations"
ALTER TABLE `new_migrations` RENAME TO `migrations`;
-- Create index "migration_tenant_id" to table: "migrations"
CREATE INDEX `migration_tenant_id` ON `migrations` (`tenant_id`);
-- Create index "migration_tenant_id_state" to table: "migrations"
CREATE INDEX `migration_tenant_id_state` ON `migrations` (`tenant_id`, `state`);
-- Create index "migration_tenant_id_host_id" to table: "migrations"
CREATE INDEX `migration_tenant_id_host_id` ON `migrations` (`tenant_id`, `host_id`);
-- Create "new_plans" table
CREATE TABLE `new_plans` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `target` text NOT NULL DEFAULT ('alibaba'), `status` text NOT NULL DEFAULT ('draft'), `constraints` json NULL, `metrics` json NULL, `problems` json NULL, `error` text NOT NULL DEFAULT (''), `infeasible` json NULL, `unplaced` json NULL, `cycles` json NULL, `warnings` json NULL, `started_at` datetime NULL, `finished_at` datetime NULL, `tenant_id` integer NOT NULL, CONSTRAINT `plans_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_plans" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_plans", 55834574848);
-- Copy rows from old table "plans" to new temporary table "new_plans"
INSERT INTO `new_plans` (`id`, `created_at`, `updated_at`, `name`, `target`, `status`, `constraints`, `metrics`, `problems`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `name`, `target`, `status`, `constraints`, `metrics`, `problems`, `tenant_id` FROM `plans`;
-- Drop "plans" table after copying rows
DROP TABLE `plans`;
-- Rename temporary table "new_plans" to "plans"
ALTER TABLE `new_plans` RENAME TO `plans`;
-- Create index "plan_tenant_id" to table: "plans"
CREATE INDEX `plan_tenant_id` ON `plans` (`tenant_id`);
-- Add column "points" to table: "recovery_points"
ALTER TABLE `recovery_points` ADD COLUMN `points` json NULL;
-- Create "new_waves" table
CREATE TABLE `new_waves` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `ordinal` integer NOT NULL, `name` text NOT NULL DEFAULT (''), `starts_at` datetime NULL, `ends_at` datetime NULL, `cutover_at` datetime NULL, `data_bytes` integer NOT NULL DEFAULT (0), `replication_seconds` integer NOT NULL DEFAULT (0), `pilot` bool NOT NULL DEFAULT (false), `host_count` integer NOT NULL DEFAULT (0), `wire_bytes` integer NOT NULL DEFAULT (0), `cutover_ends_at` datetime NULL, `status` text NOT NULL DEFAULT ('planned'), `plan_waves` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `waves_plans_waves` FOREIGN KEY (`plan_waves`) REFERENCES `plans` (`id`) ON DELETE NO ACTION, CONSTRAINT `waves_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_waves" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_waves", 85899345920);
-- Copy rows from old table "waves" to new temporary table "new_waves"
INSERT INTO `new_waves` (`id`, `created_at`, `updated_at`, `ordinal`, `name`, `starts_at`, `ends_at`, `cutover_at`, `data_bytes`, `replication_seconds`, `status`, `plan_waves`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `ordinal`, `name`, `starts_at`, `ends_at`, `cutover_at`, `data_bytes`, `replication_seconds`, `status`, `plan_waves`, `tenant_id` FROM `waves`;
-- Drop "waves" table after copying rows
DROP TABLE `waves`;
-- Rename temporary table "new_waves" to "waves"
ALTER TABLE `new_waves` RENAME TO `waves`;
-- Create index "wave_tenant_id" to table: "waves"
CREATE INDEX `wave_tenant_id` ON `waves` (`tenant_id`);
-- Create index "wave_plan_waves" to table: "waves"
CREATE INDEX `wave_plan_waves` ON `waves` (`plan_waves`);
-- Create "new_wave_members" table
CREATE TABLE `new_wave_members` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `reason` text NOT NULL DEFAULT (''), `move_group` text NOT NULL DEFAULT (''), `manual` bool NOT NULL DEFAULT (false), `bytes` integer NOT NULL DEFAULT (0), `downtime_minutes` real NOT NULL DEFAULT (0), `host_wave_memberships` integer NOT NULL, `wave_members` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `wave_members_hosts_wave_memberships` FOREIGN KEY (`host_wave_memberships`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `wave_members_waves_members` FOREIGN KEY (`wave_members`) REFERENCES `waves` (`id`) ON DELETE NO ACTION, CONSTRAINT `wave_members_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_wave_members" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_wave_members", 90194313216);
-- Copy rows from old table "wave_members" to new temporary table "new_wave_members"
INSERT INTO `new_wave_members` (`id`, `created_at`, `updated_at`, `reason`, `move_group`, `manual`, `host_wave_memberships`, `wave_members`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `reason`, `move_group`, `manual`, `host_wave_memberships`, `wave_members`, `tenant_id` FROM `wave_members`;
-- Drop "wave_members" table after copying rows
DROP TABLE `wave_members`;
-- Rename temporary table "new_wave_members" to "wave_members"
ALTER TABLE `new_wave_members` RENAME TO `wave_members`;
-- Create index "wavemember_tenant_id" to table: "wave_members"
CREATE INDEX `wavemember_tenant_id` ON `wave_members` (`tenant_id`);
-- Create index "wavemember_wave_members" to table: "wave_members"
CREATE INDEX `wavemember_wave_members` ON `wave_members` (`wave_members`);
-- Create index "wavemember_host_wave_memberships" to table: "wave_members"
CREATE INDEX `wavemember_host_wave_memberships` ON `wave_members` (`host_wave_memberships`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
