-- Create "application_suggestions" table
CREATE TABLE `application_suggestions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `environment` text NOT NULL DEFAULT (''), `extends` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('open'), `members` json NOT NULL, `host_count` integer NOT NULL DEFAULT (0), `internal_weight` integer NOT NULL DEFAULT (0), `external_weight` integer NOT NULL DEFAULT (0), `shared_weight` integer NOT NULL DEFAULT (0), `cohesion` real NOT NULL DEFAULT (0), `ports` json NULL, `neighbours` json NULL, `application_id` integer NULL, `tenant_id` integer NOT NULL, CONSTRAINT `application_suggestions_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "application_suggestions" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("application_suggestions", 94489280512);
-- Create index "applicationsuggestion_tenant_id" to table: "application_suggestions"
CREATE INDEX `applicationsuggestion_tenant_id` ON `application_suggestions` (`tenant_id`);
-- Create index "applicationsuggestion_tenant_id_status" to table: "application_suggestions"
CREATE INDEX `applicationsuggestion_tenant_id_status` ON `application_suggestions` (`tenant_id`, `status`);
