-- Add column "settings" to table: "cloud_accounts"
ALTER TABLE `cloud_accounts` ADD COLUMN `settings` json NULL;
-- Create "cloud_records" table
CREATE TABLE `cloud_records` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `key` text NOT NULL, `value` blob NOT NULL, `account_id` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `cloud_records_cloud_accounts_records` FOREIGN KEY (`account_id`) REFERENCES `cloud_accounts` (`id`) ON DELETE CASCADE, CONSTRAINT `cloud_records_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "cloud_records" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("cloud_records", 120259084288);
-- Create index "cloudrecord_tenant_id" to table: "cloud_records"
CREATE INDEX `cloudrecord_tenant_id` ON `cloud_records` (`tenant_id`);
-- Create index "cloudrecord_account_id_key" to table: "cloud_records"
CREATE UNIQUE INDEX `cloudrecord_account_id_key` ON `cloud_records` (`account_id`, `key`);
-- Create "cloud_tickets" table
CREATE TABLE `cloud_tickets` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `key` text NOT NULL, `token_hash` blob NULL, `expires_at` datetime NOT NULL, `used_at` datetime NULL, `account_id` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `cloud_tickets_cloud_accounts_tickets` FOREIGN KEY (`account_id`) REFERENCES `cloud_accounts` (`id`) ON DELETE CASCADE, CONSTRAINT `cloud_tickets_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "cloud_tickets" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("cloud_tickets", 124554051584);
-- Create index "cloud_tickets_token_hash_key" to table: "cloud_tickets"
CREATE UNIQUE INDEX `cloud_tickets_token_hash_key` ON `cloud_tickets` (`token_hash`);
-- Create index "cloudticket_tenant_id" to table: "cloud_tickets"
CREATE INDEX `cloudticket_tenant_id` ON `cloud_tickets` (`tenant_id`);
-- Create index "cloudticket_account_id_key" to table: "cloud_tickets"
CREATE INDEX `cloudticket_account_id_key` ON `cloud_tickets` (`account_id`, `key`);
