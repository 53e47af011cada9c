-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_wave_members" table
CREATE TABLE `new_wave_members` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `reason` text NOT NULL DEFAULT (''), `move_group` text NOT NULL DEFAULT (''), `manual` bool NOT NULL DEFAULT (false), `bytes` integer NOT NULL DEFAULT (0), `downtime_minutes` real NOT NULL DEFAULT (0), `run_state` text NOT NULL DEFAULT ('idle'), `run_message` text NOT NULL DEFAULT (''), `cutover_at` datetime NULL, `migration_id` integer NULL, `queue_position` integer NOT NULL DEFAULT (0), `host_wave_memberships` integer NOT NULL, `wave_members` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `wave_members_hosts_wave_memberships` FOREIGN KEY (`host_wave_memberships`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `wave_members_waves_members` FOREIGN KEY (`wave_members`) REFERENCES `waves` (`id`) ON DELETE NO ACTION, CONSTRAINT `wave_members_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_wave_members" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_wave_members", 90194313216);
-- Copy rows from old table "wave_members" to new temporary table "new_wave_members"
INSERT INTO `new_wave_members` (`id`, `created_at`, `updated_at`, `reason`, `move_group`, `manual`, `bytes`, `downtime_minutes`, `host_wave_memberships`, `wave_members`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `reason`, `move_group`, `manual`, `bytes`, `downtime_minutes`, `host_wave_memberships`, `wave_members`, `tenant_id` FROM `wave_members`;
-- Drop "wave_members" table after copying rows
DROP TABLE `wave_members`;
-- Rename temporary table "new_wave_members" to "wave_members"
ALTER TABLE `new_wave_members` RENAME TO `wave_members`;
-- Create index "wavemember_tenant_id" to table: "wave_members"
CREATE INDEX `wavemember_tenant_id` ON `wave_members` (`tenant_id`);
-- Create index "wavemember_tenant_id_wave_members" to table: "wave_members"
CREATE INDEX `wavemember_tenant_id_wave_members` ON `wave_members` (`tenant_id`, `wave_members`);
-- Create index "wavemember_wave_members" to table: "wave_members"
CREATE INDEX `wavemember_wave_members` ON `wave_members` (`wave_members`);
-- Create index "wavemember_tenant_id_host_wave_memberships" to table: "wave_members"
CREATE INDEX `wavemember_tenant_id_host_wave_memberships` ON `wave_members` (`tenant_id`, `host_wave_memberships`);
-- Create index "wavemember_host_wave_memberships" to table: "wave_members"
CREATE INDEX `wavemember_host_wave_memberships` ON `wave_members` (`host_wave_memberships`);
-- Create index "wavemember_migration_id" to table: "wave_members"
CREATE INDEX `wavemember_migration_id` ON `wave_members` (`migration_id`);
-- Create "new_waves" table
CREATE TABLE `new_waves` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `ordinal` integer NOT NULL, `name` text NOT NULL DEFAULT (''), `starts_at` datetime NULL, `ends_at` datetime NULL, `cutover_at` datetime NULL, `data_bytes` integer NOT NULL DEFAULT (0), `replication_seconds` integer NOT NULL DEFAULT (0), `pilot` bool NOT NULL DEFAULT (false), `host_count` integer NOT NULL DEFAULT (0), `wire_bytes` integer NOT NULL DEFAULT (0), `cutover_ends_at` datetime NULL, `status` text NOT NULL DEFAULT ('planned'), `confidence` text NOT NULL DEFAULT (''), `confidence_factors` json NULL, `risk` text NOT NULL DEFAULT (''), `risk_factors` json NULL, `run_settings` json NULL, `run_started_at` datetime NULL, `run_started_by` text NOT NULL DEFAULT (''), `run_cutover_at` datetime NULL, `run_cutover_ends_at` datetime NULL, `run_message` text NOT NULL DEFAULT (''), `approver_role` text NOT NULL DEFAULT (''), `approved_by` text NOT NULL DEFAULT (''), `approved_at` datetime NULL, `finished_at` datetime NULL, `manual_steps` json NULL, `plan_waves` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `waves_plans_waves` FOREIGN KEY (`plan_waves`) REFERENCES `plans` (`id`) ON DELETE NO ACTION, CONSTRAINT `waves_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_waves" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_waves", 85899345920);
-- Copy rows from old table "waves" to new temporary table "new_waves"
INSERT INTO `new_waves` (`id`, `created_at`, `updated_at`, `ordinal`, `name`, `starts_at`, `ends_at`, `cutover_at`, `data_bytes`, `replication_seconds`, `pilot`, `host_count`, `wire_bytes`, `cutover_ends_at`, `status`, `confidence`, `confidence_factors`, `risk`, `risk_factors`, `plan_waves`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `ordinal`, `name`, `starts_at`, `ends_at`, `cutover_at`, `data_bytes`, `replication_seconds`, `pilot`, `host_count`, `wire_bytes`, `cutover_ends_at`, `status`, `confidence`, `confidence_factors`, `risk`, `risk_factors`, `plan_waves`, `tenant_id` FROM `waves`;
-- Drop "waves" table after copying rows
DROP TABLE `waves`;
-- Rename temporary table "new_waves" to "waves"
ALTER TABLE `new_waves` RENAME TO `waves`;
-- Create index "wave_tenant_id" to table: "waves"
CREATE INDEX `wave_tenant_id` ON `waves` (`tenant_id`);
-- Create index "wave_tenant_id_plan_waves" to table: "waves"
CREATE INDEX `wave_tenant_id_plan_waves` ON `waves` (`tenant_id`, `plan_waves`);
-- Create index "wave_plan_waves" to table: "waves"
CREATE INDEX `wave_plan_waves` ON `waves` (`plan_waves`);
-- Create "hook_deliveries" table
CREATE TABLE `hook_deliveries` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `migration_id` integer NOT NULL, `point` text NOT NULL, `hook` text NOT NULL DEFAULT (''), `kind` text NOT NULL, `target` text NOT NULL DEFAULT (''), `attempt` integer NOT NULL DEFAULT (1), `status_code` integer NOT NULL DEFAULT (0), `ok` bool NOT NULL DEFAULT (false), `must_succeed` bool NOT NULL DEFAULT (false), `output` text NOT NULL DEFAULT (''), `error` text NOT NULL DEFAULT (''), `duration_ms` integer NOT NULL DEFAULT (0), `tenant_id` integer NOT NULL, CONSTRAINT `hook_deliveries_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "hook_deliveries" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("hook_deliveries", 115964116992);
-- Create index "hookdelivery_tenant_id" to table: "hook_deliveries"
CREATE INDEX `hookdelivery_tenant_id` ON `hook_deliveries` (`tenant_id`);
-- Create index "hookdelivery_migration_id_created_at" to table: "hook_deliveries"
CREATE INDEX `hookdelivery_migration_id_created_at` ON `hook_deliveries` (`migration_id`, `created_at`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
