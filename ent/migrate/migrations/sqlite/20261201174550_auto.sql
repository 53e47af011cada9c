-- Create "revocation_events" table
CREATE TABLE `revocation_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `subject` text NOT NULL, `revoked_at` datetime NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `revocation_events_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "revocation_events" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("revocation_events", 137438953472);
-- Create index "revocationevent_tenant_id" to table: "revocation_events"
CREATE INDEX `revocationevent_tenant_id` ON `revocation_events` (`tenant_id`);
-- Create index "revocationevent_created_at" to table: "revocation_events"
CREATE INDEX `revocationevent_created_at` ON `revocation_events` (`created_at`);
