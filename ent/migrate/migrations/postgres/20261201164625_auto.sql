-- Modify "launches" table
ALTER TABLE "launches" ADD COLUMN "instance_type" character varying NOT NULL DEFAULT '', ADD COLUMN "sizing" character varying NOT NULL DEFAULT '';
