// Package cloud owns the contract between Ferry's migration engine and a
// target cloud: the role-split interfaces a provider implements (Disks,
// Points, Machines, Gateways, composed into Driver; Provider opens a Driver
// for a cloud account and checks the account), the plain value types they
// exchange, the error kinds every provider classifies its failures into, the
// provider-independent retention rule and the Registry that maps a cloud
// account's provider name to its package.
//
// Providers live in sub-packages (local/, later alibaba/ and openstack/); each
// imports this package and never a sibling, and each runs the conformance
// suite in drivertest/. Callers (the migration steps in jobs/migration) hold a
// Driver and classify errors with errors.Is against the sentinels below.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Error kinds. Providers wrap them with %w and a message naming the object,
// e.g. fmt.Errorf("disk %q: %w", id, cloud.ErrNotFound), or return an *Error
// that carries one as its Kind.
var (
	// ErrNotFound: the named disk, recovery point or machine does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request clashes with the current state (the object
	// already exists, is in use, or is not the one an operation requires).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is malformed (bad id, size, kind, policy).
	ErrInvalid = errors.New("invalid argument")
	// ErrUnsupported: the provider or the host cannot do this (e.g. reflinks
	// requested on a filesystem without FICLONE, a boot mode it lacks).
	ErrUnsupported = errors.New("unsupported")
	// ErrCorrupt: stored data failed verification (a block's hash or a
	// manifest's digest does not match). Never retried blindly.
	ErrCorrupt = errors.New("corrupt data")
	// ErrThrottled: the cloud asked us to slow down (Throttling,
	// ServiceUnavailable). Retry after RetryAfter(err); not a failure of the
	// request itself.
	ErrThrottled = errors.New("throttled")
	// ErrQuota: the account has no room for the object (instance, disk or
	// snapshot quota). Retrying helps only once someone frees or raises it.
	ErrQuota = errors.New("quota exceeded")
)

// Error is a classified failure of one cloud call, for providers whose
// clouds say more than a sentinel can: which call, the cloud's request id
// (for the provider's support desk) and how long to back off.
type Error struct {
	Kind       error  // one of the sentinels above
	Op         string // the provider's call, e.g. "CreateSnapshot"
	Object     string // what it was about, e.g. a disk id
	RequestID  string // the cloud's id of the request, when it gave one
	RetryAfter time.Duration
	Err        error // the cloud's own error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Object != "" {
		fmt.Fprintf(&b, " %s", e.Object)
	}
	fmt.Fprintf(&b, ": %v", e.Kind)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Unwrap makes errors.Is see both the kind and the cause.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// RetryAfter is how long the cloud asked to wait before the next call, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

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
	// LaunchedBy is the machine id when the disk was made by a launch.
	LaunchedBy string
}

// Disks manages target disks.
type Disks interface {
	// CreateDisk creates an all-zero disk. Errors: ErrInvalid (id, size),
	// ErrConflict (a disk with that id exists), ErrQuota.
	CreateDisk(ctx context.Context, spec DiskSpec) (Disk, error)
	// ResizeDisk grows a disk; new space reads as zeros. Errors: ErrNotFound,
	// ErrInvalid (size not positive, or smaller than the current size).
	ResizeDisk(ctx context.Context, id string, sizeBytes int64) (Disk, error)
	// DeleteDisk removes a disk. Recovery points taken from it survive.
	// Errors: ErrNotFound, ErrConflict (the disk backs an active machine).
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

// Points manages recovery points. Retention is not a provider's business:
// ApplyRetention (retention.go) decides, through ListRecoveryPoints and
// DeleteRecoveryPoint, for every provider alike.
type Points interface {
	// CreateRecoveryPoint copies the disk's current bytes into a new
	// immutable point. The caller quiesces writers (a gateway checkpoint)
	// first. A point is visible only once complete. Errors: ErrNotFound
	// (disk), ErrInvalid, ErrQuota, context errors (nothing is left visible).
	CreateRecoveryPoint(ctx context.Context, diskID string, labels map[string]string) (RecoveryPoint, error)
	// RecoveryPoint returns one point. Errors: ErrNotFound, ErrInvalid.
	RecoveryPoint(ctx context.Context, id string) (RecoveryPoint, error)
	// ListRecoveryPoints returns a disk's points, oldest first (empty, not
	// an error, for a disk without points or one that was deleted).
	ListRecoveryPoints(ctx context.Context, diskID string) ([]RecoveryPoint, error)
	// DeleteRecoveryPoint removes a point; storage shared with other points
	// stays. Errors: ErrNotFound, ErrConflict (an active machine uses it).
	DeleteRecoveryPoint(ctx context.Context, id string) error
}

// LaunchKind is a test launch (the source keeps running) or the cutover.
type LaunchKind string

const (
	LaunchTest    LaunchKind = "test"
	LaunchCutover LaunchKind = "cutover"
)

// BootMode is the firmware a machine boots with.
type BootMode string

const (
	BootBIOS BootMode = "bios"
	BootUEFI BootMode = "uefi"
)

// Shape is the size of a machine. Zero fields take the provider's default.
type Shape struct {
	VCPUs     int
	MemoryMiB int64
	// InstanceType names a cloud's size ("ecs.g7.large"); providers that
	// size by VCPUs and MemoryMiB ignore it. A caller names only a type of
	// the provider's own cloud (an assessment for another cloud gives
	// VCPUs and MemoryMiB, never its type).
	InstanceType string
	// Basis says where the size came from, for people ("assessment 12 for
	// alibaba", "inventory: 2 vCPU, 4096 MiB"); a provider that picks the
	// type itself records on the machine's Shape how it did.
	Basis string `json:",omitempty"`
}

// MachineSpec asks for one machine booted from the recovery points of all
// the disks of a host at once.
type MachineSpec struct {
	// Token makes CreateMachine idempotent: a second call with the same
	// token is the same machine. [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
	Token       string
	Kind        LaunchKind
	MigrationID string // owner, used by Teardown and ListMachines
	// Points are the recovery point ids of the host's disks in attach
	// order; the first is the boot disk. One point per source disk.
	Points   []string
	Shape    Shape
	BootMode BootMode // empty: BootBIOS
	// Ports are the TCP ports the source was seen listening on (the
	// discovery inventory's): a booting provider checks that they answer
	// on the launched copy.
	Ports []int `json:",omitempty"`
}

// MachineState is where a machine stands.
type MachineState string

const (
	MachineCreating   MachineState = "creating"    // disks being made from the points
	MachineStarting   MachineState = "starting"    // created; Wait boots and checks it
	MachineRunning    MachineState = "running"     // test launch, checks passed
	MachineLive       MachineState = "live"        // cutover, checks passed: production runs here
	MachineFailed     MachineState = "failed"      // launched, but a check failed
	MachineTerminated MachineState = "terminated"  // test copy discarded
	MachineRolledBack MachineState = "rolled_back" // discarded; the source is authoritative again
)

// Active reports whether the machine holds resources (disks, a VM).
func (s MachineState) Active() bool {
	switch s {
	case MachineCreating, MachineStarting, MachineRunning, MachineLive, MachineFailed:
		return true
	}
	return false
}

// Uses reports whether the machine is active and one of its disks matches
// (the disk or the recovery point a provider is asked to delete).
func (m Machine) Uses(match func(MachineDisk) bool) bool {
	return m.State.Active() && slices.ContainsFunc(m.Disks, match)
}

// Settled reports whether Wait has nothing more to wait for.
func (s MachineState) Settled() bool { return s != MachineCreating && s != MachineStarting }

// MachineDisk is one disk of a machine.
type MachineDisk struct {
	PointID      string // the recovery point it was made from
	SourceDiskID string // the replicated disk the point came from
	DiskID       string // the launched copy (empty once discarded)
}

// Check is the outcome of one check (of a launch, or of an account).
type Check struct {
	Name string // e.g. "partition-table", "filesystem p1", "boot"
	// Disk is the source disk (MachineDisk.SourceDiskID) a launch check
	// is about; empty for the machine as a whole (the boot) and accounts.
	Disk    string `json:",omitempty"`
	Passed  bool
	Skipped bool   // not run (tool absent, option off); Passed is true
	Message string // what was found, or what is wrong and where
	// Duration is how long the check took (for boot checks: from the
	// start of the boot, so it reads as time-to-healthy); 0 when unmeasured.
	Duration time.Duration `json:",omitempty"`
	// Evidence is what the verdict rests on: a console excerpt, the ports
	// and what answered, the adaptation's changes.
	Evidence string `json:",omitempty"`
}

// Machine is a launched copy of a host's recovery points.
type Machine struct {
	ID          string
	Token       string
	Kind        LaunchKind
	MigrationID string
	State       MachineState
	Disks       []MachineDisk
	Shape       Shape
	BootMode    BootMode
	CreatedAt   time.Time
	// Stage is the provider's progress inside a transitional state (for the
	// log: "materialise 2/3", "RunInstances").
	Stage  string `json:",omitempty"`
	Checks []Check
	Ports  []int `json:",omitempty"`
	// Console is an excerpt of the serial console of the machine's last
	// boot (its tail), for the launch page; empty when nothing booted.
	Console string `json:",omitempty"`
	// Accel is how the provider ran the machine and why ("tcg: KVM probe
	// boot failed: …"); empty for clouds.
	Accel string `json:",omitempty"`
	// HealthyAt is when its checks all passed (zero otherwise).
	HealthyAt time.Time `json:",omitzero"`
}

// Passed reports whether every check passed.
func (m Machine) Passed() bool {
	for _, c := range m.Checks {
		if !c.Passed {
			return false
		}
	}
	return true
}

// Machines launches, terminates and rolls back machines. Creation is split
// in two so that a launch taking minutes (a cloud's six-call launch, a qemu
// boot) resumes where a crash left it: CreateMachine and Wait are both
// idempotent, and calling them again continues the work.
type Machines interface {
	// CreateMachine makes the machine's disks from spec.Points and returns
	// it in state starting (Wait boots and checks it). Idempotent per
	// spec.Token: the same token returns the same machine, finishing its
	// creation if it was interrupted; the same token with other points is
	// ErrConflict. A cutover must use each disk's newest point, and a source
	// disk has at most one live (or still launching) cutover machine.
	// Errors: ErrInvalid (kind, token, no points, two points of one disk),
	// ErrNotFound (a point), ErrConflict (the cutover rules), ErrUnsupported
	// (boot mode, more disks than Capabilities allow), ErrQuota,
	// ErrThrottled, ErrCorrupt (stored data).
	CreateMachine(ctx context.Context, spec MachineSpec) (Machine, error)
	// Wait blocks until the machine has settled and returns it with its
	// checks; failed checks are State MachineFailed, not an error. A cutover
	// machine whose checks pass is MachineLive. Errors: ErrNotFound,
	// ErrConflict (still creating: call CreateMachine again), ErrThrottled,
	// context errors (call Wait again).
	Wait(ctx context.Context, id string) (Machine, error)
	// Machine returns one machine. Errors: ErrNotFound, ErrInvalid.
	Machine(ctx context.Context, id string) (Machine, error)
	// ListMachines returns the migration's machines, oldest first.
	ListMachines(ctx context.Context, migrationID string) ([]Machine, error)
	// Terminate discards a test machine's copies. Idempotent. Errors:
	// ErrNotFound, ErrConflict (the machine is live: use Rollback).
	Terminate(ctx context.Context, id string) error
	// Rollback discards any machine's copies and leaves the source disks and
	// their recovery points as they were. Idempotent. Errors: ErrNotFound.
	Rollback(ctx context.Context, id string) error
}

// LaunchStages is implemented by providers whose launches are real boots
// in stages that a caller may drive one at a time, recording each as a
// phase: AdaptMachine prepares the machine's copies for the target's
// hardware (virtio drivers, fstab and bootloader by UUID, DHCP) and records
// an "adapt" check with every change; BootMachine adapts first if needed,
// boots and runs the health checks (console, ports, agent) and settles the
// machine as Wait would. Both are idempotent and resume after a crash (an
// interrupted boot is booted again from the adapted copies); a machine that
// has settled is returned as it is. Wait does whatever is left.
type LaunchStages interface {
	AdaptMachine(ctx context.Context, id string) (Machine, error)
	BootMachine(ctx context.Context, id string) (Machine, error)
}

// GatewayEndpoint tells the data path where a disk's bytes go.
type GatewayEndpoint struct {
	DiskID    string
	SizeBytes int64
	// Path is set by in-process providers (local): the gateway pwrites here.
	Path string
	// URL is set by providers that run a remote gateway (a VM with the disk
	// attached); the agent connects to it, pinning Fingerprint.
	URL         string
	Fingerprint string
}

// Gateways prepares where replicated bytes land.
type Gateways interface {
	// PrepareGateway makes the disk writable by a gateway and says where.
	// Idempotent. Errors: ErrNotFound, ErrInvalid, ErrQuota, ErrThrottled.
	PrepareGateway(ctx context.Context, diskID string) (GatewayEndpoint, error)
	// ReleaseGateway undoes PrepareGateway. Idempotent. Errors: ErrInvalid.
	ReleaseGateway(ctx context.Context, diskID string) error
}

// Capabilities say what a provider can do, so the steps ask only for that.
type Capabilities struct {
	// MaxDisksPerMachine bounds MachineSpec.Points (0: no bound).
	MaxDisksPerMachine int
	// BootModes the provider can boot.
	BootModes []BootMode
	// Boots is true when launches really start the machine; false when a
	// launch only materialises and inspects the disks.
	Boots bool
	// GatewayInProcess is true when the gateway runs inside the control
	// plane (GatewayEndpoint.Path); false when it runs in the cloud (URL).
	GatewayInProcess bool
	// PointMethod is how recovery points are stored ("cas", "reflink",
	// "snapshot").
	PointMethod string
}

// Driver is a target cloud, opened for one account.
type Driver interface {
	// Name is the provider's name ("local", "alibaba").
	Name() string
	Capabilities() Capabilities
	Disks
	Points
	Machines
	Gateways
	// Teardown removes everything owned by the migration: machines,
	// disks, recovery points and their storage. Idempotent.
	Teardown(ctx context.Context, migrationID string) error
}

// Account is a cloud account as a provider needs it: the database row's
// fields with the secret already opened.
type Account struct {
	ID          string // the row's id, "" for the built-in local cloud
	Name        string
	Provider    string
	Region      string
	AccessKeyID string
	Secret      []byte // opened; never log it
	// Settings are the account's provider-specific, non-secret options
	// (an endpoint, the vSwitch instances go in, a RAM role to assume, the
	// source networks the gateway admits); each provider documents its keys.
	Settings map[string]string
}

// Provider is a cloud's package as the registry sees it.
type Provider interface {
	// Name is the value of CloudAccount.provider it serves.
	Name() string
	// Open returns a Driver for the account. A provider may hand out the
	// same Driver for accounts that share state (the local cloud has one
	// data directory). Errors: ErrInvalid (the account's fields),
	// ErrConflict (the state is owned by another process), cloud errors.
	Open(ctx context.Context, a Account) (Driver, error)
	// Check tests the account without migrating anything (credentials,
	// permissions, room) and reports each check; it opens no Driver, so it
	// runs in any process.
	Check(ctx context.Context, a Account) []Check
}
