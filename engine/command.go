package engine

import "time"

// Agent command types. The control plane derives them from the database at
// each long-poll; an agent's CommandRunner carries them out.
const (
	// CommandSync asks for one replication pass of a migration's disks (its
	// payload is a SyncCommand). An agent that already runs a pass for a
	// disk remembers the newer pass and runs it after the current one.
	CommandSync = "sync"
	// CommandHook asks the agent to run one of the host's installed hook
	// scripts (its payload is a HookCommand).
	CommandHook = "hook"
	// CommandResume asks the agent to bring back a source it quiesced for
	// a cutover that failed or was rolled back (its payload is a
	// ResumeCommand): restart the stopped services, thaw the filesystems.
	CommandResume = "resume"
)

// QuiescePlan is how the agent quiesces the source before the final pass
// of a cutover (engine/quiesce): the user picks the mode in the
// migration's settings ("quiesce": {"mode": "services", "services": [...]}).
type QuiescePlan struct {
	Mode     string   `json:"mode"` // services, freeze or shutdown
	Services []string `json:"services,omitempty"`
	Mounts   []string `json:"mounts,omitempty"`
	// WatchdogSeconds thaws frozen filesystems whatever happens (default
	// 600): a frozen root never comes back by itself.
	WatchdogSeconds int `json:"watchdog_seconds,omitempty"`
}

// ResumeCommand is the payload of a CommandResume command.
type ResumeCommand struct {
	MigrationID int `json:"migration_id"`
}

// SyncCommand is the payload of a CommandSync command.
type SyncCommand struct {
	MigrationID int `json:"migration_id"`
	// Pass numbers the migration's sync passes; a higher pass supersedes.
	Pass int `json:"pass"`
	// Final marks the cutover's last delta: the source should be quiesced
	// (the Before hooks of a final pass are where that happens).
	Final bool `json:"final,omitempty"`
	// Gateway is the gateway's base URL for disks that name none; empty
	// means the control plane the agent talks to (the in-process gateway at
	// /sync/v1/).
	Gateway string `json:"gateway,omitempty"`
	// Rate caps the agent's sending rate: the migration's stored setting,
	// read with ferry.ParseStoredRate(rate, ferry.EngineRates) (the server
	// stores ferry.Rate.String's spelling, e.g. "8Mbps"); empty means
	// unlimited.
	Rate string `json:"rate,omitempty"`
	// Fingerprint pins a gateway's self-signed certificate (https only), for
	// disks that name no gateway of their own.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Before are hooks run once per pass before any disk of it is read; a
	// must-succeed hook that fails stops the pass.
	Before []Hook            `json:"before,omitempty"`
	Disks  []SyncCommandDisk `json:"disks"`
	// Quiesce, on a final pass, is done after the Before hooks (which may
	// need the filesystems writable) and before any block is read; the source stays quiesced until a CommandResume
	// (a failed cutover, a rollback) or for good (a cutover that worked).
	Quiesce *QuiescePlan `json:"quiesce,omitempty"`
}

// SyncCommandDisk names one source disk and where it goes.
type SyncCommandDisk struct {
	Name       string `json:"name"`             // inventory name ("sda"), matched by --disk-source
	Device     string `json:"device,omitempty"` // source device path when the inventory knew it
	SizeBytes  int64  `json:"size_bytes"`
	DiskID     string `json:"disk_id"`    // target disk id at the gateway
	Credential string `json:"credential"` // bearer credential for DiskID; never log it
	// Gateway and Fingerprint, when set, are this disk's gateway (disks of
	// one host may land on different gateways).
	Gateway     string `json:"gateway,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Hook names a script installed on the source host, in the agent's hooks
// directory: the control plane can only ask for what the host's own
// administrator put there.
type Hook struct {
	Name string `json:"name"` // file name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}
	// TimeoutSeconds bounds the run (default 300); the script's process
	// group is killed when it passes.
	TimeoutSeconds int  `json:"timeout_seconds,omitempty"`
	MustSucceed    bool `json:"must_succeed,omitempty"`
}

// HookCommand is the payload of a CommandHook command.
type HookCommand struct {
	MigrationID int    `json:"migration_id"`
	Stage       string `json:"stage"` // when it runs: before_sync, before_cutover, after_cutover …
	Hook
}

// CommandResult is what an agent reports about a command it carried out.
type CommandResult struct {
	CommandID   string `json:"command_id"`
	Type        string `json:"type"`
	MigrationID int    `json:"migration_id"`
	Pass        int    `json:"pass,omitempty"`
	Disk        string `json:"disk,omitempty"`
	Hook        string `json:"hook,omitempty"`
	Stage       string `json:"stage,omitempty"`
	// QuiescedAt is when a quiesce command made the source stop changing.
	QuiescedAt time.Time `json:"quiesced_at,omitzero"`
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
	ExitCode   int       `json:"exit_code,omitempty"`
	Output     string    `json:"output,omitempty"` // the last 4 KiB of a hook's output
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}
