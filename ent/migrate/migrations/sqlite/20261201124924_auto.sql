-- Create "steps" table
CREATE TABLE `steps` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `kind` text NOT NULL, `phase` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('pending'), `generation` integer NOT NULL DEFAULT (0), `lease_owner` text NOT NULL DEFAULT (''), `lease_until` datetime NULL, `wake_at` datetime NULL, `attempts` integer NOT NULL DEFAULT (0), `last_error` text NOT NULL DEFAULT (''), `data` json NULL, `finished_at` datetime NULL, `launch_id` integer NULL, `migration_id` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `steps_launches_steps` FOREIGN KEY (`launch_id`) REFERENCES `launches` (`id`) ON DELETE SET NULL, CONSTRAINT `steps_migrations_steps` FOREIGN KEY (`migration_id`) REFERENCES `migrations` (`id`) ON DELETE NO ACTION, CONSTRAINT `steps_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "steps" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("steps", 107374182400);
-- Create index "step_tenant_id" to table: "steps"
CREATE INDEX `step_tenant_id` ON `steps` (`tenant_id`);
-- Create index "step_migration_id_kind" to table: "steps"
CREATE INDEX `step_migration_id_kind` ON `steps` (`migration_id`, `kind`);
-- Create index "step_status_lease_until" to table: "steps"
CREATE INDEX `step_status_lease_until` ON `steps` (`status`, `lease_until`);
-- Create index "step_launch_id" to table: "steps"
CREATE INDEX `step_launch_id` ON `steps` (`launch_id`);
-- Create "step_events" table
CREATE TABLE `step_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `phase` text NOT NULL DEFAULT (''), `level` text NOT NULL DEFAULT ('info'), `message` text NOT NULL, `step_id` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `step_events_steps_events` FOREIGN KEY (`step_id`) REFERENCES `steps` (`id`) ON DELETE NO ACTION, CONSTRAINT `step_events_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "step_events" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("step_events", 111669149696);
-- Create index "stepevent_tenant_id" to table: "step_events"
CREATE INDEX `stepevent_tenant_id` ON `step_events` (`tenant_id`);
-- Create index "stepevent_step_id_created_at" to table: "step_events"
CREATE INDEX `stepevent_step_id_created_at` ON `step_events` (`step_id`, `created_at`);
