package ferry

import "time"

// MigrationDisk is one source disk of a migration and the target disk it is
// replicated to. It is a snapshot taken when the migration was prepared:
// inventory updates may replace a host's disk rows, the migration keeps
// replicating what it started with.
type MigrationDisk struct {
	Name      string `json:"name"`   // the source disk's name in the inventory ("sda", "vda")
	Device    string `json:"device"` // device path on the source, when known
	SizeBytes int64  `json:"size_bytes"`
	// TargetDiskID is the cloud driver's disk (and the gateway's disk id).
	TargetDiskID string `json:"target_disk_id"`
	// BytesDone is how far the current pass has durably come on this disk.
	BytesDone int64 `json:"bytes_done"`
	// SyncedAt is when the gateway last proved the target equal to the
	// source; a pass is complete when every disk's SyncedAt is at or after
	// the migration's SyncRequestedAt.
	SyncedAt *time.Time `json:"synced_at,omitempty"`
	// StartedAt is when the agent last opened a sync session for the disk.
	StartedAt *time.Time `json:"started_at,omitempty"`
	// SeenAt is when the gateway last recorded anything of the disk's sync
	// (a command is re-sent when it has been quiet too long).
	SeenAt *time.Time `json:"seen_at,omitempty"`
	// GatewayURL and Fingerprint are where the agent sends this disk (the
	// cloud driver's gateway endpoint): an empty URL is the control plane's
	// own in-process gateway.
	GatewayURL  string `json:"gateway_url,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// WireBytes is how many bytes the current pass has sent over the wire
	// for this disk (the gateway's count; kept once the disk's part of the
	// pass is done): the pass's rate and ETA are measured on the wire.
	WireBytes int64 `json:"wire_bytes,omitempty"`
}

// DiskPoint is one disk's part of a migration's recovery point.
type DiskPoint struct {
	DiskName     string `json:"disk_name"`
	TargetDiskID string `json:"target_disk_id"`
	PointID      string `json:"point_id"`
	Digest       string `json:"digest"`
	SizeBytes    int64  `json:"size_bytes"`
	// Consistent: the pass read this disk from a point-in-time snapshot
	// (filesystems frozen for the instant); Consistency says how, or why not.
	Consistent  bool   `json:"consistent,omitempty"`
	Consistency string `json:"consistency,omitempty"`
}

// DiskInstance is one disk's part of a launch: the machine (InstanceID,
// the same for every disk of a launch) and the launched copy of the disk.
type DiskInstance struct {
	DiskName   string `json:"disk_name"`
	InstanceID string `json:"instance_id"`
	DiskID     string `json:"disk_id"` // the launched copy
	State      string `json:"state"`
}
