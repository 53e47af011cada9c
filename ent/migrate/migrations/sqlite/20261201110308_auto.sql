-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Add column "shared_services" to table: "plans"
ALTER TABLE `plans` ADD COLUMN `shared_services` json NULL;
-- Create "new_waves" table
CREATE TABLE `new_waves` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `ordinal` integer NOT NULL, `name` text NOT NULL DEFAULT (''), `starts_at` datetime NULL, `ends_at` datetime NULL, `cutover_at` datetime NULL, `data_bytes` integer NOT NULL DEFAULT (0), `replication_seconds` integer NOT NULL DEFAULT (0), `pilot` bool NOT NULL DEFAULT (false), `host_count` integer NOT NULL DEFAULT (0), `wire_bytes` integer NOT NULL DEFAULT (0), `cutover_ends_at` datetime NULL, `status` text NOT NULL DEFAULT ('planned'), `confidence` text NOT NULL DEFAULT (''), `confidence_factors` json NULL, `risk` text NOT NULL DEFAULT (''), `risk_factors` json NULL, `plan_waves` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `waves_plans_waves` FOREIGN KEY (`plan_waves`) REFERENCES `plans` (`id`) ON DELETE NO ACTION, CONSTRAINT `waves_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_waves" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_waves", 85899345920);
-- Copy rows from old table "waves" to new temporary table "new_waves"
INSERT INTO `new_waves` (`id`, `created_at`, `updated_at`, `ordinal`, `name`, `starts_at`, `ends_at`, `cutover_at`, `data_bytes`, `replication_seconds`, `pilot`, `host_count`, `wire_bytes`, `cutover_ends_at`, `status`, `plan_waves`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `ordinal`, `name`, `starts_at`, `ends_at`, `cutover_at`, `data_bytes`, `replication_seconds`, `pilot`, `host_count`, `wire_bytes`, `cutover_ends_at`, `status`, `plan_waves`, `tenant_id` FROM `waves`;
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
-- Create "application_suggestions" table
CREATE TABLE `application_suggestions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `environment` text NOT NULL DEFAULT (''), `extends` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('open'), `members` json NOT NULL, `host_count` integer NOT NULL DEFAULT (0), `internal_weight` integer NOT NULL DEFAULT (0), `external_weight` integer NOT NULL DEFAULT (0), `shared_weight` integer NOT NULL DEFAULT (0), `cohesion` real NOT NULL DEFAULT (0), `ports` json NULL, `neighbours` json NULL, `application_id` integer NULL, `tenant_id` integer NOT NULL, CONSTRAINT `application_suggestions_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "application_suggestions" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("application_suggestions", 94489280512);
-- Create index "applicationsuggestion_tenant_id" to table: "application_suggestions"
CREATE INDEX `applicationsuggestion_tenant_id` ON `application_suggestions` (`tenant_id`);
-- Create index "applicationsuggestion_tenant_id_status" to table: "application_suggestions"
CREATE INDEX `applicationsuggestion_tenant_id_status` ON `application_suggestions` (`tenant_id`, `status`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
