-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_audit_events" table
CREATE TABLE `new_audit_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `actor` text NOT NULL, `action` text NOT NULL, `object_type` text NOT NULL DEFAULT (''), `object_id` text NOT NULL DEFAULT (''), `trace_id` text NOT NULL DEFAULT (''), `source_ip` text NOT NULL DEFAULT (''), `details` json NULL, `changes` json NULL, `seq` integer NOT NULL DEFAULT (0), `prev_hash` text NOT NULL DEFAULT (''), `hash` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, CONSTRAINT `audit_events_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_audit_events" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_audit_events", 17179869184);
-- Copy rows from old table "audit_events" to new temporary table "new_audit_events"
INSERT INTO `new_audit_events` (`id`, `created_at`, `updated_at`, `actor`, `action`, `object_type`, `object_id`, `trace_id`, `details`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `actor`, `action`, `object_type`, `object_id`, `trace_id`, `details`, `tenant_id` FROM `audit_events`;
-- Drop "audit_events" table after copying rows
DROP TABLE `audit_events`;
-- Rename temporary table "new_audit_events" to "audit_events"
ALTER TABLE `new_audit_events` RENAME TO `audit_events`;
-- Create index "auditevent_tenant_id" to table: "audit_events"
CREATE INDEX `auditevent_tenant_id` ON `audit_events` (`tenant_id`);
-- Create index "auditevent_tenant_id_created_at" to table: "audit_events"
CREATE INDEX `auditevent_tenant_id_created_at` ON `audit_events` (`tenant_id`, `created_at`);
-- Create index "auditevent_tenant_id_seq" to table: "audit_events"
CREATE INDEX `auditevent_tenant_id_seq` ON `audit_events` (`tenant_id`, `seq`);
-- Create index "auditevent_tenant_id_trace_id" to table: "audit_events"
CREATE INDEX `auditevent_tenant_id_trace_id` ON `audit_events` (`tenant_id`, `trace_id`);
-- Create "new_tenants" table
CREATE TABLE `new_tenants` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `slug` text NOT NULL, `disabled` bool NOT NULL DEFAULT (false), `suspended_at` datetime NULL, `suspend_reason` text NOT NULL DEFAULT (''), `deletion_scheduled_at` datetime NULL);
-- Set sequence for "new_tenants" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_tenants", 77309411328);
-- Copy rows from old table "tenants" to new temporary table "new_tenants"
INSERT INTO `new_tenants` (`id`, `created_at`, `updated_at`, `name`, `slug`, `disabled`) SELECT `id`, `created_at`, `updated_at`, `name`, `slug`, `disabled` FROM `tenants`;
-- Drop "tenants" table after copying rows
DROP TABLE `tenants`;
-- Rename temporary table "new_tenants" to "tenants"
ALTER TABLE `new_tenants` RENAME TO `tenants`;
-- Create index "tenants_name_key" to table: "tenants"
CREATE UNIQUE INDEX `tenants_name_key` ON `tenants` (`name`);
-- Create index "tenants_slug_key" to table: "tenants"
CREATE UNIQUE INDEX `tenants_slug_key` ON `tenants` (`slug`);
-- Create "new_users" table
CREATE TABLE `new_users` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `email` text NOT NULL, `name` text NOT NULL DEFAULT (''), `role` text NOT NULL DEFAULT ('viewer'), `password_hash` text NULL, `disabled` bool NOT NULL DEFAULT (false), `last_login_at` datetime NULL, `external_id` text NULL, `tenant_id` integer NOT NULL, CONSTRAINT `users_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "new_users" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("new_users", 81604378624);
-- Copy rows from old table "users" to new temporary table "new_users"
INSERT INTO `new_users` (`id`, `created_at`, `updated_at`, `email`, `name`, `role`, `password_hash`, `disabled`, `last_login_at`, `tenant_id`) SELECT `id`, `created_at`, `updated_at`, `email`, `name`, `role`, `password_hash`, `disabled`, `last_login_at`, `tenant_id` FROM `users`;
-- Drop "users" table after copying rows
DROP TABLE `users`;
-- Rename temporary table "new_users" to "users"
ALTER TABLE `new_users` RENAME TO `users`;
-- Create index "users_email_key" to table: "users"
CREATE UNIQUE INDEX `users_email_key` ON `users` (`email`);
-- Create index "users_external_id_key" to table: "users"
CREATE UNIQUE INDEX `users_external_id_key` ON `users` (`external_id`);
-- Create index "user_tenant_id" to table: "users"
CREATE INDEX `user_tenant_id` ON `users` (`tenant_id`);
-- Create "audit_heads" table
CREATE TABLE `audit_heads` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `tenant_id` integer NOT NULL, `seq` integer NOT NULL DEFAULT (0), `hash` text NOT NULL DEFAULT (''));
-- Set sequence for "audit_heads" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("audit_heads", 128849018880);
-- Create index "audit_heads_tenant_id_key" to table: "audit_heads"
CREATE UNIQUE INDEX `audit_heads_tenant_id_key` ON `audit_heads` (`tenant_id`);
-- Create "marketplace_instances" table
CREATE TABLE `marketplace_instances` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `provider` text NOT NULL DEFAULT ('alibaba'), `order_biz_id` text NOT NULL, `instance_id` text NOT NULL, `order_id` text NOT NULL DEFAULT (''), `ali_uid` text NOT NULL DEFAULT (''), `sku_id` text NOT NULL DEFAULT (''), `trial` bool NOT NULL DEFAULT (false), `status` text NOT NULL DEFAULT ('active'), `expires_at` datetime NULL, `last_params` json NULL, `tenant_id` integer NOT NULL, CONSTRAINT `marketplace_instances_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "marketplace_instances" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("marketplace_instances", 133143986176);
-- Create index "marketplace_instances_order_biz_id_key" to table: "marketplace_instances"
CREATE UNIQUE INDEX `marketplace_instances_order_biz_id_key` ON `marketplace_instances` (`order_biz_id`);
-- Create index "marketplace_instances_instance_id_key" to table: "marketplace_instances"
CREATE UNIQUE INDEX `marketplace_instances_instance_id_key` ON `marketplace_instances` (`instance_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
