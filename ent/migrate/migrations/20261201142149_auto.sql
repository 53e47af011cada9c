-- Add column "manual_steps" to table: "waves"
ALTER TABLE `waves` ADD COLUMN `manual_steps` json NULL;
