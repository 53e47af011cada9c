-- Add column "reasons" to table: "wave_members"
ALTER TABLE `wave_members` ADD COLUMN `reasons` json NULL;
