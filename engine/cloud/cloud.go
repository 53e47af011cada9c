// Package cloud owns the contract between Ferry's migration engine and a
// target cloud: the role-split interfaces a provider implements (Disks,
// RecoveryPoints, Launcher, Gateways, composed into Driver), the plain value
// types they exchange, the error kinds every provider classifies its failures
// into, and the provider-independent retention rule.
//
// Providers live in sub-packages (local/, later alibaba/ and openstack/); each
// imports this package and never a sibling. Callers (the asynq migration jobs)
// hold a Driver and classify errors with errors.Is against the sentinels below.
package cloud

import (
	"context"
	"errors"
	"time"
)

// Error kinds. Providers wrap them with %w and a message naming the object,
// e.g. fmt.Errorf("disk %q: %w", id, cloud.ErrNotFound).
var (
	// ErrNotFound: the named disk, recovery point or instance does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request clashes with the current state (the object
	// already exists, is in use, or is not the one an operation requires).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is malformed (bad id, size, kind, policy).
	ErrInvalid = errors.New("invalid argument")
	// ErrUnsupported: the provider or the host cannot do this (e.g. reflinks
	// requested on a filesystem without FICLONE).
	ErrUnsupported = errors.New("unsupported")
	// ErrCorrupt: stored data failed verification (a block's hash or a
	// manifest's digest does not match). Never retried blindly.
	ErrCorrupt = errors.New("corrupt data")
)

// DiskSpec asks for a new, empty (all-zero) target disk.
type DiskSpec struct {
	ID          string // caller-chosen, unique within the driver; [A-Za-z0-9][A-Za-z0-9._-]{0,127}
	SizeBytes   int64  // > 0
	MigrationID string // owner, used by Teardown; may be empty
}

// Disk describes a target disk.
type Disk struct {
	ID          string
	SizeBytes   int64
	MigrationID string
	CreatedAt   time.Time
	// LaunchedBy is the instance id when the disk was made by a launch.
	LaunchedBy string
}

// Disks manages target disks.
type Disks interface {
	// CreateDisk creates an all-zero disk. Errors: ErrInvalid (id, size),
	// ErrConflict (a disk with that id exists).
	CreateDisk(ctx context.Context, spec DiskSpec) (Disk, error)
	// ResizeDisk grows a disk; new space reads as zeros. Errors: ErrNotFound,
	// ErrInvalid (size not positive, or smaller than the current size).
	ResizeDisk(ctx context.Context, id string, sizeBytes int64) (Disk, error)
	// DeleteDisk removes a disk. Recovery points taken from it survive.
	// Errors: ErrNotFound, ErrConflict (the disk backs an active instance).
	DeleteDisk(ctx context.Context, id string) error
	// Disk returns one disk. Errors: ErrNotFound, ErrInvalid (bad id).
	Disk(ctx context.Context, id string) (Disk, error)
}

// RecoveryPoint is an immutable copy of a disk at one moment.
type RecoveryPoint struct {
	ID          string
	DiskID      string
	MigrationID string
	CreatedAt   time.Time
	SizeBytes   int64 // the disk's size when the point was taken
	// ManifestDigest is "sha256:<hex>" over the point's block manifest; two
	// points with equal digests hold equal bytes.
	ManifestDigest string
	Labels         map[string]string
	// Method says how the provider stored it ("cas", "reflink", "snapshot").
	Method string
	// StoredBytes is what this point added to storage when it was taken
	// (after de-duplication and compression; 0 for a reflink).
	StoredBytes int64
}

// RetentionPolicy keeps the newest KeepLast points, plus the newest point of
// each of the KeepDaily most recent calendar days (UTC, counting the day of
// "now"). The newest point is always kept.
type RetentionPolicy struct {
	KeepLast  int
	KeepDaily int
}

// RecoveryPoints manages recovery points.
type RecoveryPoints interface {
	// CreateRecoveryPoint copies the disk's current bytes into a new
	// immutable point. The caller quiesces writers (a gateway checkpoint)
	// first. A point is visible only once complete. Errors: ErrNotFound
	// (disk), ErrInvalid, context errors (nothing is left visible).
	CreateRecoveryPoint(ctx context.Context, diskID string, labels map[string]string) (RecoveryPoint, error)
	// RecoveryPoint returns one point. Errors: ErrNotFound, ErrInvalid.
	RecoveryPoint(ctx context.Context, id string) (RecoveryPoint, error)
	// ListRecoveryPoints returns a disk's points, oldest first (empty, not
	// an error, for a disk without points or one that was deleted).
	ListRecoveryPoints(ctx context.Context, diskID string) ([]RecoveryPoint, error)
	// DeleteRecoveryPoint removes a point; storage shared with other points
	// stays. Errors: ErrNotFound, ErrConflict (an active instance uses it).
	DeleteRecoveryPoint(ctx context.Context, id string) error
	// ApplyRetention deletes the disk's points the policy does not keep and
	// returns their ids, oldest first. Errors: ErrInvalid (negative policy
	// or a policy that keeps nothing).
	ApplyRetention(ctx context.Context, diskID string, policy RetentionPolicy, now time.Time) ([]string, error)
}

// LaunchKind is a test launch (the source keeps running) or the cutover.
type LaunchKind string

const (
	LaunchTest    LaunchKind = "test"
	LaunchCutover LaunchKind = "cutover"
)

// LaunchSpec asks for an instance booted from a recovery point.
type LaunchSpec struct {
	Kind            LaunchKind
	RecoveryPointID string
	MigrationID     string // owner, used by Teardown; defaults to the point's
}

// InstanceState is where a launched instance stands.
type InstanceState string

const (
	InstanceRunning    InstanceState = "running"     // test launch, checks passed
	InstanceLive       InstanceState = "live"        // cutover, checks passed: production runs here
	InstanceFailed     InstanceState = "failed"      // launched, but a check failed
	InstanceTerminated InstanceState = "terminated"  // test copy discarded
	InstanceRolledBack InstanceState = "rolled_back" // discarded; the source is authoritative again
)

// Check is the outcome of one launch check.
type Check struct {
	Name    string // e.g. "partition-table", "filesystem p1", "boot"
	Passed  bool
	Skipped bool   // not run (tool absent, option off); Passed is true
	Message string // what was found, or what is wrong and where
}

// Instance is a launched copy of a recovery point.
type Instance struct {
	ID              string
	Kind            LaunchKind
	RecoveryPointID string
	SourceDiskID    string // the replicated disk the point came from
	DiskID          string // the launched copy (empty once discarded)
	MigrationID     string
	State           InstanceState
	CreatedAt       time.Time
	Checks          []Check
}

// Passed reports whether every check passed.
func (i Instance) Passed() bool {
	for _, c := range i.Checks {
		if !c.Passed {
			return false
		}
	}
	return true
}

// Launcher launches, terminates and rolls back instances.
type Launcher interface {
	// Launch materialises the point into a new disk, runs the launch
	// checks and returns the instance; failed checks are reported in
	// Instance.Checks with State InstanceFailed, not as an error. A cutover
	// must use the disk's newest point and marks the instance live.
	// Errors: ErrInvalid (kind, id), ErrNotFound (point), ErrConflict
	// (cutover from a point that is not the newest, or a second live
	// instance for the same source disk), ErrCorrupt (stored data).
	Launch(ctx context.Context, spec LaunchSpec) (Instance, error)
	// Instance returns one instance. Errors: ErrNotFound, ErrInvalid.
	Instance(ctx context.Context, id string) (Instance, error)
	// Terminate discards a test instance's copy. Idempotent. Errors:
	// ErrNotFound, ErrConflict (the instance is live: use Rollback).
	Terminate(ctx context.Context, id string) error
	// Rollback discards the launched copy of any instance and leaves the
	// source disk and its recovery points as they were. Idempotent.
	// Errors: ErrNotFound.
	Rollback(ctx context.Context, id string) error
}

// GatewayEndpoint tells the data path where a disk's bytes go.
type GatewayEndpoint struct {
	DiskID    string
	SizeBytes int64
	// Path is set by in-process providers (local): the gateway pwrites here.
	Path string
	// URL is set by providers that run a remote gateway (a VM with the disk
	// attached); the agent connects to it.
	URL string
}

// Gateways prepares where replicated bytes land.
type Gateways interface {
	// PrepareGateway makes the disk writable by a gateway and says where.
	// Idempotent. Errors: ErrNotFound, ErrInvalid.
	PrepareGateway(ctx context.Context, diskID string) (GatewayEndpoint, error)
	// ReleaseGateway undoes PrepareGateway. Idempotent. Errors: ErrInvalid.
	ReleaseGateway(ctx context.Context, diskID string) error
}

// Driver is a target cloud.
type Driver interface {
	// Name is the provider's name ("local", "alibaba").
	Name() string
	Disks
	RecoveryPoints
	Launcher
	Gateways
	// Teardown removes everything owned by the migration: instances,
	// disks, recovery points and their storage. Idempotent.
	Teardown(ctx context.Context, migrationID string) error
}
