-- Create index "apitoken_user_api_tokens" to table: "api_tokens"
CREATE INDEX `apitoken_user_api_tokens` ON `api_tokens` (`user_api_tokens`);
-- Create index "disk_tenant_id_host_disks" to table: "disks"
CREATE INDEX `disk_tenant_id_host_disks` ON `disks` (`tenant_id`, `host_disks`);
-- Create index "disk_host_disks" to table: "disks"
CREATE INDEX `disk_host_disks` ON `disks` (`host_disks`);
-- Create index "host_tenant_id_application_id" to table: "hosts"
CREATE INDEX `host_tenant_id_application_id` ON `hosts` (`tenant_id`, `application_id`);
-- Create index "host_application_id" to table: "hosts"
CREATE INDEX `host_application_id` ON `hosts` (`application_id`);
-- Create index "networkinterface_tenant_id_host_nics" to table: "network_interfaces"
CREATE INDEX `networkinterface_tenant_id_host_nics` ON `network_interfaces` (`tenant_id`, `host_nics`);
-- Create index "networkinterface_host_nics" to table: "network_interfaces"
CREATE INDEX `networkinterface_host_nics` ON `network_interfaces` (`host_nics`);
-- Create index "session_user_sessions" to table: "sessions"
CREATE INDEX `session_user_sessions` ON `sessions` (`user_sessions`);
-- Create index "software_tenant_id_host_software" to table: "softwares"
CREATE INDEX `software_tenant_id_host_software` ON `softwares` (`tenant_id`, `host_software`);
-- Create index "software_host_software" to table: "softwares"
CREATE INDEX `software_host_software` ON `softwares` (`host_software`);
-- Create index "wave_tenant_id_plan_waves" to table: "waves"
CREATE INDEX `wave_tenant_id_plan_waves` ON `waves` (`tenant_id`, `plan_waves`);
-- Create index "wavemember_tenant_id_wave_members" to table: "wave_members"
CREATE INDEX `wavemember_tenant_id_wave_members` ON `wave_members` (`tenant_id`, `wave_members`);
-- Create index "wavemember_tenant_id_host_wave_memberships" to table: "wave_members"
CREATE INDEX `wavemember_tenant_id_host_wave_memberships` ON `wave_members` (`tenant_id`, `host_wave_memberships`);
