-- Add column "findings" to table: "assessments"
ALTER TABLE `assessments` ADD COLUMN `findings` json NULL;
-- Create "discovery_sources" table
CREATE TABLE `discovery_sources` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL DEFAULT ('vcenter'), `url` text NOT NULL, `username` text NOT NULL DEFAULT (''), `secret_ciphertext` blob NULL, `insecure` bool NOT NULL DEFAULT (false), `interval_minutes` integer NOT NULL DEFAULT (0), `next_run_at` datetime NULL, `last_run_at` datetime NULL, `last_status` text NOT NULL DEFAULT ('never'), `last_error` text NOT NULL DEFAULT (''), `last_hosts` integer NOT NULL DEFAULT (0), `last_import_run_id` integer NULL, `tenant_id` integer NOT NULL, CONSTRAINT `discovery_sources_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "discovery_sources" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("discovery_sources", 98784247808);
-- Create index "discoverysource_tenant_id" to table: "discovery_sources"
CREATE INDEX `discoverysource_tenant_id` ON `discovery_sources` (`tenant_id`);
-- Create "price_catalogs" table
CREATE TABLE `price_catalogs` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `target` text NOT NULL, `source` text NOT NULL DEFAULT (''), `date` text NOT NULL, `currency` text NOT NULL DEFAULT ('USD'), `catalog` text NOT NULL, `types` integer NOT NULL DEFAULT (0), `imported_by` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, CONSTRAINT `price_catalogs_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "price_catalogs" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("price_catalogs", 103079215104);
-- Create index "pricecatalog_tenant_id" to table: "price_catalogs"
CREATE INDEX `pricecatalog_tenant_id` ON `price_catalogs` (`tenant_id`);
