-- Add column "shared_services" to table: "plans"
ALTER TABLE `plans` ADD COLUMN `shared_services` json NULL;
