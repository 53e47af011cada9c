package engine

// CommandSync is the type of the agent command that asks for one replication
// pass of a migration's disks (its payload is a SyncCommand). The control
// plane derives it from the database; an agent that already runs a pass for
// a disk remembers the newer pass and runs it after the current one.
const CommandSync = "sync"

// SyncCommand is the payload of a CommandSync command.
type SyncCommand struct {
	MigrationID int `json:"migration_id"`
	// Pass numbers the migration's sync passes; a higher pass supersedes.
	Pass int `json:"pass"`
	// Final marks the cutover's last delta: the source should be quiesced.
	Final bool `json:"final,omitempty"`
	// Gateway is the gateway's base URL; empty means the control plane the
	// agent talks to (the in-process gateway at /sync/v1/).
	Gateway string `json:"gateway,omitempty"`
	// Rate caps the agent's sending rate: the migration's stored setting,
	// read with ferry.ParseStoredRate(rate, ferry.EngineRates) (the server
	// stores ferry.Rate.String's spelling, e.g. "8Mbps"); empty means
	// unlimited.
	Rate string `json:"rate,omitempty"`
	// Fingerprint pins a gateway's self-signed certificate (https only).
	Fingerprint string            `json:"fingerprint,omitempty"`
	Disks       []SyncCommandDisk `json:"disks"`
}

// SyncCommandDisk names one source disk and where it goes.
type SyncCommandDisk struct {
	Name       string `json:"name"`             // inventory name ("sda"), matched by --disk-source
	Device     string `json:"device,omitempty"` // source device path when the inventory knew it
	SizeBytes  int64  `json:"size_bytes"`
	DiskID     string `json:"disk_id"`    // target disk id at the gateway
	Credential string `json:"credential"` // bearer credential for DiskID; never log it
}
