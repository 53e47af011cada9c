-- Create "api_tokens" table
CREATE TABLE `api_tokens` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `prefix` text NOT NULL, `token_hash` blob NOT NULL, `expires_at` datetime NULL, `last_used_at` datetime NULL, `revoked_at` datetime NULL, `tenant_id` integer NOT NULL, `user_api_tokens` integer NOT NULL, CONSTRAINT `api_tokens_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `api_tokens_users_api_tokens` FOREIGN KEY (`user_api_tokens`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- Create index "api_tokens_prefix_key" to table: "api_tokens"
CREATE UNIQUE INDEX `api_tokens_prefix_key` ON `api_tokens` (`prefix`);
-- Create index "api_tokens_token_hash_key" to table: "api_tokens"
CREATE UNIQUE INDEX `api_tokens_token_hash_key` ON `api_tokens` (`token_hash`);
-- Create index "apitoken_tenant_id" to table: "api_tokens"
CREATE INDEX `apitoken_tenant_id` ON `api_tokens` (`tenant_id`);
-- Create "agents" table
CREATE TABLE `agents` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL DEFAULT (''), `hostname` text NOT NULL DEFAULT (''), `credential_hash` blob NOT NULL, `version` text NOT NULL DEFAULT (''), `last_heartbeat_at` datetime NULL, `revoked_at` datetime NULL, `tenant_id` integer NOT NULL, `registration_token_agents` integer NULL, CONSTRAINT `agents_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `agents_registration_tokens_agents` FOREIGN KEY (`registration_token_agents`) REFERENCES `registration_tokens` (`id`) ON DELETE SET NULL);
-- Set sequence for "agents" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("agents", 4294967296);
-- Create index "agents_credential_hash_key" to table: "agents"
CREATE UNIQUE INDEX `agents_credential_hash_key` ON `agents` (`credential_hash`);
-- Create index "agent_tenant_id" to table: "agents"
CREATE INDEX `agent_tenant_id` ON `agents` (`tenant_id`);
-- Create "applications" table
CREATE TABLE `applications` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `description` text NOT NULL DEFAULT (''), `suggested` bool NOT NULL DEFAULT (false), `tenant_id` integer NOT NULL, CONSTRAINT `applications_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "applications" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("applications", 8589934592);
-- Create index "application_tenant_id" to table: "applications"
CREATE INDEX `application_tenant_id` ON `applications` (`tenant_id`);
-- Create index "application_tenant_id_name" to table: "applications"
CREATE UNIQUE INDEX `application_tenant_id_name` ON `applications` (`tenant_id`, `name`);
-- Create "assessments" table
CREATE TABLE `assessments` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `target` text NOT NULL, `region` text NOT NULL DEFAULT (''), `readiness` text NOT NULL DEFAULT ('unknown'), `reasons` json NULL, `actions` json NULL, `instance_type` text NOT NULL DEFAULT (''), `monthly_cost_as_is` real NOT NULL DEFAULT (0), `monthly_cost_right_sized` real NOT NULL DEFAULT (0), `transfer_seconds` integer NOT NULL DEFAULT (0), `offline_seeding` bool NOT NULL DEFAULT (false), `tenant_id` integer NOT NULL, `host_id` integer NOT NULL, CONSTRAINT `assessments_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `assessments_hosts_assessments` FOREIGN KEY (`host_id`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION);
-- Set sequence for "assessments" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("assessments", 12884901888);
-- Create index "assessment_tenant_id" to table: "assessments"
CREATE INDEX `assessment_tenant_id` ON `assessments` (`tenant_id`);
-- Create index "assessment_tenant_id_host_id_target" to table: "assessments"
CREATE UNIQUE INDEX `assessment_tenant_id_host_id_target` ON `assessments` (`tenant_id`, `host_id`, `target`);
-- Create index "assessment_tenant_id_readiness" to table: "assessments"
CREATE INDEX `assessment_tenant_id_readiness` ON `assessments` (`tenant_id`, `readiness`);
-- Create "audit_events" table
CREATE TABLE `audit_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `actor` text NOT NULL, `action` text NOT NULL, `object_type` text NOT NULL DEFAULT (''), `object_id` text NOT NULL DEFAULT (''), `trace_id` text NOT NULL DEFAULT (''), `details` json NULL, `tenant_id` integer NOT NULL, CONSTRAINT `audit_events_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "audit_events" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("audit_events", 17179869184);
-- Create index "auditevent_tenant_id" to table: "audit_events"
CREATE INDEX `auditevent_tenant_id` ON `audit_events` (`tenant_id`);
-- Create index "auditevent_tenant_id_created_at" to table: "audit_events"
CREATE INDEX `auditevent_tenant_id_created_at` ON `audit_events` (`tenant_id`, `created_at`);
-- Create "cloud_accounts" table
CREATE TABLE `cloud_accounts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `provider` text NOT NULL, `region` text NOT NULL DEFAULT (''), `access_key_id` text NOT NULL DEFAULT (''), `secret_ciphertext` blob NULL, `checked_at` datetime NULL, `check_message` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, CONSTRAINT `cloud_accounts_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "cloud_accounts" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("cloud_accounts", 21474836480);
-- Create index "cloudaccount_tenant_id" to table: "cloud_accounts"
CREATE INDEX `cloudaccount_tenant_id` ON `cloud_accounts` (`tenant_id`);
-- Create "connections" table
CREATE TABLE `connections` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `dst_address` text NOT NULL DEFAULT (''), `port` integer NOT NULL, `protocol` text NOT NULL DEFAULT ('tcp'), `process` text NOT NULL DEFAULT (''), `first_seen` datetime NULL, `last_seen` datetime NULL, `count` integer NOT NULL DEFAULT (1), `bytes` integer NOT NULL DEFAULT (0), `tenant_id` integer NOT NULL, `src_host_id` integer NOT NULL, `dst_host_id` integer NULL, CONSTRAINT `connections_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `connections_hosts_outgoing` FOREIGN KEY (`src_host_id`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `connections_hosts_incoming` FOREIGN KEY (`dst_host_id`) REFERENCES `hosts` (`id`) ON DELETE SET NULL);
-- Set sequence for "connections" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("connections", 25769803776);
-- Create index "connection_tenant_id" to table: "connections"
CREATE INDEX `connection_tenant_id` ON `connections` (`tenant_id`);
-- Create index "connection_tenant_id_src_host_id_dst_host_id_port" to table: "connections"
CREATE INDEX `connection_tenant_id_src_host_id_dst_host_id_port` ON `connections` (`tenant_id`, `src_host_id`, `dst_host_id`, `port`);
-- Create index "connection_tenant_id_dst_host_id" to table: "connections"
CREATE INDEX `connection_tenant_id_dst_host_id` ON `connections` (`tenant_id`, `dst_host_id`);
-- Create "disks" table
CREATE TABLE `disks` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `size_bytes` integer NOT NULL DEFAULT (0), `used_bytes` integer NOT NULL DEFAULT (0), `device` text NOT NULL DEFAULT (''), `filesystem` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, `host_disks` integer NOT NULL, CONSTRAINT `disks_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `disks_hosts_disks` FOREIGN KEY (`host_disks`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION);
-- Set sequence for "disks" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("disks", 30064771072);
-- Create index "disk_tenant_id" to table: "disks"
CREATE INDEX `disk_tenant_id` ON `disks` (`tenant_id`);
-- Create "hosts" table
CREATE TABLE `hosts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `fqdn` text NOT NULL DEFAULT (''), `external_id` text NOT NULL DEFAULT (''), `bios_uuid` text NOT NULL DEFAULT (''), `machine_id` text NOT NULL DEFAULT (''), `os` text NOT NULL DEFAULT (''), `os_family` text NOT NULL DEFAULT (''), `kernel` text NOT NULL DEFAULT (''), `arch` text NOT NULL DEFAULT (''), `boot_mode` text NOT NULL DEFAULT ('unknown'), `cpus` integer NOT NULL DEFAULT (0), `cpu_model` text NOT NULL DEFAULT (''), `memory_mib` integer NOT NULL DEFAULT (0), `disk_provisioned_bytes` integer NOT NULL DEFAULT (0), `disk_used_bytes` integer NOT NULL DEFAULT (0), `virtualization` text NOT NULL DEFAULT (''), `power_state` text NOT NULL DEFAULT (''), `source` text NOT NULL DEFAULT ('manual'), `criticality` text NOT NULL DEFAULT ('unknown'), `environment` text NOT NULL DEFAULT ('unknown'), `owner` text NOT NULL DEFAULT (''), `tags` json NULL, `ips` json NULL, `macs` json NULL, `cpu_p95` real NULL, `memory_p95` real NULL, `pinned_wave` integer NOT NULL DEFAULT (0), `last_seen_at` datetime NULL, `agent_host` integer NULL, `application_id` integer NULL, `tenant_id` integer NOT NULL, CONSTRAINT `hosts_agents_host` FOREIGN KEY (`agent_host`) REFERENCES `agents` (`id`) ON DELETE SET NULL, CONSTRAINT `hosts_applications_hosts` FOREIGN KEY (`application_id`) REFERENCES `applications` (`id`) ON DELETE SET NULL, CONSTRAINT `hosts_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "hosts" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("hosts", 34359738368);
-- Create index "hosts_agent_host_key" to table: "hosts"
CREATE UNIQUE INDEX `hosts_agent_host_key` ON `hosts` (`agent_host`);
-- Create index "host_tenant_id" to table: "hosts"
CREATE INDEX `host_tenant_id` ON `hosts` (`tenant_id`);
-- Create index "host_tenant_id_name" to table: "hosts"
CREATE INDEX `host_tenant_id_name` ON `hosts` (`tenant_id`, `name`);
-- Create index "host_tenant_id_bios_uuid" to table: "hosts"
CREATE INDEX `host_tenant_id_bios_uuid` ON `hosts` (`tenant_id`, `bios_uuid`);
-- Create index "host_tenant_id_environment" to table: "hosts"
CREATE INDEX `host_tenant_id_environment` ON `hosts` (`tenant_id`, `environment`);
-- Create index "host_tenant_id_criticality" to table: "hosts"
CREATE INDEX `host_tenant_id_criticality` ON `hosts` (`tenant_id`, `criticality`);
-- Create index "host_tenant_id_os" to table: "hosts"
CREATE INDEX `host_tenant_id_os` ON `hosts` (`tenant_id`, `os`);
-- Create index "host_tenant_id_created_at" to table: "hosts"
CREATE INDEX `host_tenant_id_created_at` ON `hosts` (`tenant_id`, `created_at`);
-- Create "import_runs" table
CREATE TABLE `import_runs` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `kind` text NOT NULL, `filename` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('running'), `rows_total` integer NOT NULL DEFAULT (0), `rows_imported` integer NOT NULL DEFAULT (0), `hosts_created` integer NOT NULL DEFAULT (0), `hosts_updated` integer NOT NULL DEFAULT (0), `connections_imported` integer NOT NULL DEFAULT (0), `errors` json NULL, `actor` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, CONSTRAINT `import_runs_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "import_runs" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("import_runs", 38654705664);
-- Create index "importrun_tenant_id" to table: "import_runs"
CREATE INDEX `importrun_tenant_id` ON `import_runs` (`tenant_id`);
-- Create "launches" table
CREATE TABLE `launches` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `kind` text NOT NULL, `status` text NOT NULL DEFAULT ('pending'), `instance_id` text NOT NULL DEFAULT (''), `checks` json NULL, `finished_at` datetime NULL, `tenant_id` integer NOT NULL, `migration_launches` integer NOT NULL, `recovery_point_launches` integer NULL, CONSTRAINT `launches_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `launches_migrations_launches` FOREIGN KEY (`migration_launches`) REFERENCES `migrations` (`id`) ON DELETE NO ACTION, CONSTRAINT `launches_recovery_points_launches` FOREIGN KEY (`recovery_point_launches`) REFERENCES `recovery_points` (`id`) ON DELETE SET NULL);
-- Set sequence for "launches" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("launches", 42949672960);
-- Create index "launch_tenant_id" to table: "launches"
CREATE INDEX `launch_tenant_id` ON `launches` (`tenant_id`);
-- Create "migrations" table
CREATE TABLE `migrations` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `state` text NOT NULL DEFAULT ('pending'), `failure_reason` text NOT NULL DEFAULT (''), `settings` json NULL, `bytes_total` integer NOT NULL DEFAULT (0), `bytes_done` integer NOT NULL DEFAULT (0), `rate_bps` integer NOT NULL DEFAULT (0), `lag_seconds` integer NOT NULL DEFAULT (0), `eta_seconds` integer NOT NULL DEFAULT (0), `last_sync_at` datetime NULL, `cloud_account_migrations` integer NULL, `host_id` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `migrations_cloud_accounts_migrations` FOREIGN KEY (`cloud_account_migrations`) REFERENCES `cloud_accounts` (`id`) ON DELETE SET NULL, CONSTRAINT `migrations_hosts_migrations` FOREIGN KEY (`host_id`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `migrations_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "migrations" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("migrations", 47244640256);
-- Create index "migration_tenant_id" to table: "migrations"
CREATE INDEX `migration_tenant_id` ON `migrations` (`tenant_id`);
-- Create index "migration_tenant_id_state" to table: "migrations"
CREATE INDEX `migration_tenant_id_state` ON `migrations` (`tenant_id`, `state`);
-- Create index "migration_tenant_id_host_id" to table: "migrations"
CREATE INDEX `migration_tenant_id_host_id` ON `migrations` (`tenant_id`, `host_id`);
-- Create "network_interfaces" table
CREATE TABLE `network_interfaces` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL DEFAULT (''), `mac` text NOT NULL DEFAULT (''), `addresses` json NULL, `network` text NOT NULL DEFAULT (''), `host_nics` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `network_interfaces_hosts_nics` FOREIGN KEY (`host_nics`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `network_interfaces_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "network_interfaces" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("network_interfaces", 51539607552);
-- Create index "networkinterface_tenant_id" to table: "network_interfaces"
CREATE INDEX `networkinterface_tenant_id` ON `network_interfaces` (`tenant_id`);
-- Create index "networkinterface_tenant_id_mac" to table: "network_interfaces"
CREATE INDEX `networkinterface_tenant_id_mac` ON `network_interfaces` (`tenant_id`, `mac`);
-- Create "plans" table
CREATE TABLE `plans` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `target` text NOT NULL DEFAULT ('alibaba'), `status` text NOT NULL DEFAULT ('draft'), `constraints` json NULL, `metrics` json NULL, `problems` json NULL, `tenant_id` integer NOT NULL, CONSTRAINT `plans_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "plans" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("plans", 55834574848);
-- Create index "plan_tenant_id" to table: "plans"
CREATE INDEX `plan_tenant_id` ON `plans` (`tenant_id`);
-- Create "recovery_points" table
CREATE TABLE `recovery_points` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `external_id` text NOT NULL, `size_bytes` integer NOT NULL DEFAULT (0), `manifest_digest` text NOT NULL DEFAULT (''), `labels` json NULL, `migration_recovery_points` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `recovery_points_migrations_recovery_points` FOREIGN KEY (`migration_recovery_points`) REFERENCES `migrations` (`id`) ON DELETE NO ACTION, CONSTRAINT `recovery_points_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "recovery_points" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("recovery_points", 60129542144);
-- Create index "recoverypoint_tenant_id" to table: "recovery_points"
CREATE INDEX `recoverypoint_tenant_id` ON `recovery_points` (`tenant_id`);
-- Create "registration_tokens" table
CREATE TABLE `registration_tokens` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `token_id` text NOT NULL, `expires_at` datetime NOT NULL, `max_uses` integer NOT NULL DEFAULT (1), `uses` integer NOT NULL DEFAULT (0), `revoked_at` datetime NULL, `tenant_id` integer NOT NULL, CONSTRAINT `registration_tokens_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "registration_tokens" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("registration_tokens", 64424509440);
-- Create index "registration_tokens_token_id_key" to table: "registration_tokens"
CREATE UNIQUE INDEX `registration_tokens_token_id_key` ON `registration_tokens` (`token_id`);
-- Create index "registrationtoken_tenant_id" to table: "registration_tokens"
CREATE INDEX `registrationtoken_tenant_id` ON `registration_tokens` (`tenant_id`);
-- Create "sessions" table
CREATE TABLE `sessions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `token_hash` blob NOT NULL, `expires_at` datetime NOT NULL, `ip` text NOT NULL DEFAULT (''), `user_agent` text NOT NULL DEFAULT (''), `tenant_id` integer NOT NULL, `user_sessions` integer NOT NULL, CONSTRAINT `sessions_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION, CONSTRAINT `sessions_users_sessions` FOREIGN KEY (`user_sessions`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- Set sequence for "sessions" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("sessions", 68719476736);
-- Create index "sessions_token_hash_key" to table: "sessions"
CREATE UNIQUE INDEX `sessions_token_hash_key` ON `sessions` (`token_hash`);
-- Create index "session_tenant_id" to table: "sessions"
CREATE INDEX `session_tenant_id` ON `sessions` (`tenant_id`);
-- Create "softwares" table
CREATE TABLE `softwares` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL DEFAULT (''), `version` text NOT NULL DEFAULT (''), `process` text NOT NULL DEFAULT (''), `host_software` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `softwares_hosts_software` FOREIGN KEY (`host_software`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `softwares_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "softwares" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("softwares", 73014444032);
-- Create index "software_tenant_id" to table: "softwares"
CREATE INDEX `software_tenant_id` ON `softwares` (`tenant_id`);
-- Create "tenants" table
CREATE TABLE `tenants` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `slug` text NOT NULL, `disabled` bool NOT NULL DEFAULT (false));
-- Set sequence for "tenants" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("tenants", 77309411328);
-- Create index "tenants_name_key" to table: "tenants"
CREATE UNIQUE INDEX `tenants_name_key` ON `tenants` (`name`);
-- Create index "tenants_slug_key" to table: "tenants"
CREATE UNIQUE INDEX `tenants_slug_key` ON `tenants` (`slug`);
-- Create "users" table
CREATE TABLE `users` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `email` text NOT NULL, `name` text NOT NULL DEFAULT (''), `role` text NOT NULL DEFAULT ('viewer'), `password_hash` text NULL, `disabled` bool NOT NULL DEFAULT (false), `last_login_at` datetime NULL, `tenant_id` integer NOT NULL, CONSTRAINT `users_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "users" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("users", 81604378624);
-- Create index "users_email_key" to table: "users"
CREATE UNIQUE INDEX `users_email_key` ON `users` (`email`);
-- Create index "user_tenant_id" to table: "users"
CREATE INDEX `user_tenant_id` ON `users` (`tenant_id`);
-- Create "waves" table
CREATE TABLE `waves` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `ordinal` integer NOT NULL, `name` text NOT NULL DEFAULT (''), `starts_at` datetime NULL, `ends_at` datetime NULL, `cutover_at` datetime NULL, `data_bytes` integer NOT NULL DEFAULT (0), `replication_seconds` integer NOT NULL DEFAULT (0), `status` text NOT NULL DEFAULT ('planned'), `plan_waves` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `waves_plans_waves` FOREIGN KEY (`plan_waves`) REFERENCES `plans` (`id`) ON DELETE NO ACTION, CONSTRAINT `waves_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "waves" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("waves", 85899345920);
-- Create index "wave_tenant_id" to table: "waves"
CREATE INDEX `wave_tenant_id` ON `waves` (`tenant_id`);
-- Create "wave_members" table
CREATE TABLE `wave_members` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `reason` text NOT NULL DEFAULT (''), `move_group` text NOT NULL DEFAULT (''), `manual` bool NOT NULL DEFAULT (false), `host_wave_memberships` integer NOT NULL, `wave_members` integer NOT NULL, `tenant_id` integer NOT NULL, CONSTRAINT `wave_members_hosts_wave_memberships` FOREIGN KEY (`host_wave_memberships`) REFERENCES `hosts` (`id`) ON DELETE NO ACTION, CONSTRAINT `wave_members_waves_members` FOREIGN KEY (`wave_members`) REFERENCES `waves` (`id`) ON DELETE NO ACTION, CONSTRAINT `wave_members_tenants_tenant` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`) ON DELETE NO ACTION);
-- Set sequence for "wave_members" table
INSERT INTO sqlite_sequence (name, seq) VALUES ("wave_members", 90194313216);
-- Create index "wavemember_tenant_id" to table: "wave_members"
CREATE INDEX `wavemember_tenant_id` ON `wave_members` (`tenant_id`);
