package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect"
)

// machineID derives the machine's id from its token, so that a caller that
// crashed before recording the id finds the same machine again.
func machineID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "i-" + hex.EncodeToString(sum[:8])
}

// machineDiskID names the k-th disk of machine id: "<id>-disk" for the boot
// disk (the name one-disk launches always had), "<id>-disk2" and on after it.
func machineDiskID(id string, k int) string {
	if k == 0 {
		return id + "-disk"
	}
	return fmt.Sprintf("%s-disk%d", id, k+1)
}

// lockMachine serialises work on one machine within the process.
func (d *Driver) lockMachine(id string) func() {
	v, _ := d.busy.LoadOrStore(id, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// createdMachine locks machine id and loads it for verb ("wait for",
// "adapt"), refusing one still being created: its disks are not whole yet.
// The caller calls unlock when done with it.
func (d *Driver) createdMachine(ctx context.Context, verb, id string) (m cloud.Machine, unlock func(), err error) {
	if err := checkID("machine", id); err != nil {
		return cloud.Machine{}, nil, err
	}
	unlock = d.lockMachine(id)
	m, err = d.Machine(ctx, id)
	if err == nil && m.State == cloud.MachineCreating {
		err = fmt.Errorf("%s machine %s: %w: it is still being created (call CreateMachine again with its token)", verb, id, cloud.ErrConflict)
	}
	if err != nil {
		unlock()
		return cloud.Machine{}, nil, err
	}
	return m, unlock, nil
}

// CreateMachine implements cloud.Machines: the machine's meta is written
// first (state creating), then each point is materialised into its disk;
// a call after a crash skips the disks that are complete (a disk is visible
// only once whole) and makes the rest.
func (d *Driver) CreateMachine(ctx context.Context, spec cloud.MachineSpec) (cloud.Machine, error) {
	if spec.Kind != cloud.LaunchTest && spec.Kind != cloud.LaunchCutover {
		return cloud.Machine{}, fmt.Errorf("create machine: kind %q (want test or cutover): %w", spec.Kind, cloud.ErrInvalid)
	}
	if err := checkID("machine token", spec.Token); err != nil {
		return cloud.Machine{}, err
	}
	if len(spec.Points) == 0 {
		return cloud.Machine{}, fmt.Errorf("create machine %s: no recovery points: %w", spec.Token, cloud.ErrInvalid)
	}
	if spec.BootMode == "" {
		spec.BootMode = cloud.BootBIOS
	}
	if !slices.Contains(d.Capabilities().BootModes, spec.BootMode) {
		return cloud.Machine{}, fmt.Errorf("create machine %s: boot mode %s: the local cloud's boot check boots BIOS only (qemu without OVMF): %w", spec.Token, spec.BootMode, cloud.ErrUnsupported)
	}
	pts := make([]pointMeta, len(spec.Points))
	seen := map[string]bool{}
	for i, id := range spec.Points {
		p, err := d.point(id)
		if err != nil {
			return cloud.Machine{}, fmt.Errorf("create machine %s: %w", spec.Token, err)
		}
		if seen[p.DiskID] {
			return cloud.Machine{}, fmt.Errorf("create machine %s: two points of disk %s: %w", spec.Token, p.DiskID, cloud.ErrInvalid)
		}
		seen[p.DiskID] = true
		pts[i] = p
	}
	id := machineID(spec.Token)
	defer d.lockMachine(id)()

	m, err := d.reserveMachine(id, spec, pts)
	if err != nil || m.State != cloud.MachineCreating {
		return m, err
	}
	for k, md := range m.Disks {
		d.mu.Lock()
		_, done := d.disks[md.DiskID]
		d.mu.Unlock()
		if done {
			continue
		}
		p := pts[k]
		if _, err := d.createDisk(cloud.DiskSpec{ID: md.DiskID, SizeBytes: p.SizeBytes, MigrationID: m.MigrationID}, id,
			func(f *os.File) error { return d.materialise(ctx, p, f) }); err != nil {
			return cloud.Machine{}, fmt.Errorf("create machine %s: disk %d of %d from point %s: %w", id, k+1, len(m.Disks), p.ID, err)
		}
	}
	m.State, m.Stage = cloud.MachineStarting, ""
	if err := d.saveMachine(m); err != nil {
		return cloud.Machine{}, fmt.Errorf("create machine %s: %w", id, err)
	}
	return m, nil
}

// reserveMachine returns the machine for id: the existing one (which must be
// the same spec), or a new one in state creating, recorded before any disk
// is made, after the cutover rules allowed it.
func (d *Driver) reserveMachine(id string, spec cloud.MachineSpec, pts []pointMeta) (cloud.Machine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.machines[id]; ok {
		var had []string
		for _, md := range m.Disks {
			had = append(had, md.PointID)
		}
		if m.Token != spec.Token || m.Kind != spec.Kind || !slices.Equal(had, spec.Points) {
			return cloud.Machine{}, fmt.Errorf("create machine %s: %w: token %q already names machine %s of points %v", spec.Token, cloud.ErrConflict, spec.Token, id, had)
		}
		return cloneMachine(m), nil
	}
	if spec.Kind == cloud.LaunchCutover {
		for _, p := range pts {
			all := d.pointsOf(p.DiskID)
			if newest := all[len(all)-1]; newest.ID != p.ID {
				return cloud.Machine{}, fmt.Errorf("cutover from point %s of disk %s: %w: the newest point is %s (take the final point, then cut over from it)",
					p.ID, p.DiskID, cloud.ErrConflict, newest.ID)
			}
			for _, other := range d.machines {
				if other.Kind != cloud.LaunchCutover || !slices.ContainsFunc(other.Disks, func(md cloud.MachineDisk) bool { return md.SourceDiskID == p.DiskID }) {
					continue
				}
				switch other.State {
				case cloud.MachineLive:
					return cloud.Machine{}, fmt.Errorf("cutover of disk %s: %w: machine %s is already live (roll it back first)", p.DiskID, cloud.ErrConflict, other.ID)
				case cloud.MachineCreating, cloud.MachineStarting:
					return cloud.Machine{}, fmt.Errorf("cutover of disk %s: %w: another cutover of it is in progress (machine %s)", p.DiskID, cloud.ErrConflict, other.ID)
				}
			}
		}
	}
	m := cloud.Machine{ID: id, Token: spec.Token, Kind: spec.Kind, MigrationID: spec.MigrationID, State: cloud.MachineCreating,
		Shape: spec.Shape, BootMode: spec.BootMode, CreatedAt: d.clock().UTC(), Ports: slices.Clone(spec.Ports)}
	if m.MigrationID == "" {
		m.MigrationID = pts[0].MigrationID
	}
	for k, p := range pts {
		m.Disks = append(m.Disks, cloud.MachineDisk{PointID: p.ID, SourceDiskID: p.DiskID, DiskID: machineDiskID(id, k)})
	}
	if err := d.writeMeta("machines", id, m); err != nil {
		return cloud.Machine{}, fmt.Errorf("create machine %s: %w", id, err)
	}
	d.machines[id] = cloneMachine(m)
	return m, nil
}

func (d *Driver) saveMachine(m cloud.Machine) error {
	if err := d.writeMeta("machines", m.ID, m); err != nil {
		return err
	}
	d.mu.Lock()
	d.machines[m.ID] = cloneMachine(m)
	d.mu.Unlock()
	return nil
}

// cloneMachine copies the slices: what callers hold never aliases the
// driver's own record.
func cloneMachine(m cloud.Machine) cloud.Machine {
	m.Disks = slices.Clone(m.Disks)
	m.Checks = slices.Clone(m.Checks)
	m.Ports = slices.Clone(m.Ports)
	return m
}

// Wait implements cloud.Machines: a starting machine is checked (every
// disk's partition table and filesystems, then the boot of all its disks
// together when booting is on) and settles as running, live or failed.
func (d *Driver) Wait(ctx context.Context, id string) (cloud.Machine, error) {
	m, unlock, err := d.createdMachine(ctx, "wait for", id)
	if err != nil {
		return cloud.Machine{}, err
	}
	defer unlock()
	if m.State.Settled() {
		return m, nil
	}
	if d.vms != nil {
		return d.bootMachine(ctx, m)
	}
	checks, paths, err := d.materialChecks(m)
	if err != nil {
		return cloud.Machine{}, fmt.Errorf("wait for machine %s: %w", id, err)
	}
	boot := d.bootCheck(ctx, paths, m.Shape)
	if err := ctx.Err(); err != nil {
		return cloud.Machine{}, err // interrupted, not failed: Wait again
	}
	m.Checks = append(checks, boot)
	switch {
	case !m.Passed():
		m.State = cloud.MachineFailed
	case m.Kind == cloud.LaunchCutover:
		m.State = cloud.MachineLive
	default:
		m.State = cloud.MachineRunning
	}
	if err := d.saveMachine(m); err != nil {
		return cloud.Machine{}, fmt.Errorf("wait for machine %s: %w", id, err)
	}
	return m, nil
}

// materialChecks are the checks of the machine's materialised disks (how
// each was made, its partition table and filesystems) and their paths.
func (d *Driver) materialChecks(m cloud.Machine) ([]cloud.Check, []string, error) {
	var checks []cloud.Check
	var paths []string
	for _, md := range m.Disks {
		p, err := d.point(md.PointID)
		if err != nil {
			return nil, nil, err
		}
		how := "verified block by block"
		if p.Method == string(ModeReflink) {
			how = "cloned with FICLONE"
		}
		checks = append(checks, cloud.Check{Name: "materialise", Disk: md.SourceDiskID, Passed: true,
			Message: fmt.Sprintf("%d bytes from recovery point %s (%s, manifest %s) %s", p.SizeBytes, p.ID, p.Method, p.ManifestDigest, how)})
		checks = append(checks, diskChecks(d.diskFile(md.DiskID), p.SizeBytes, md.SourceDiskID)...)
		paths = append(paths, d.diskFile(md.DiskID))
	}
	return checks, paths, nil
}

// diskChecks inspects a launched disk image: partition table and a
// filesystem on every partition that should hold one.
func diskChecks(path string, size int64, disk string) []cloud.Check {
	f, err := os.Open(path)
	if err != nil {
		return []cloud.Check{{Name: "partition-table", Disk: disk, Message: fmt.Sprintf("open %s: %v", path, err)}}
	}
	defer f.Close()
	var cs []cloud.Check
	rep, err := inspect.Disk(f, size)
	switch {
	case err != nil:
		cs = append(cs, cloud.Check{Name: "partition-table", Message: err.Error()})
	case rep.Table == inspect.TableNone && rep.Filesystem == "":
		cs = append(cs, cloud.Check{Name: "partition-table", Message: "no MBR or GPT partition table and no filesystem on the raw disk"})
	case rep.Table == inspect.TableNone:
		cs = append(cs, cloud.Check{Name: "partition-table", Passed: true, Message: "no partition table: the whole disk is one filesystem"},
			cloud.Check{Name: "filesystem disk", Passed: true, Message: describeFS(rep.Filesystem, rep.Label)})
	default:
		cs = append(cs, cloud.Check{Name: "partition-table", Passed: len(rep.Partitions) > 0,
			Message: fmt.Sprintf("%s with %d partitions", rep.Table, len(rep.Partitions))})
		for _, p := range rep.Partitions {
			if p.NoFilesystem {
				continue
			}
			c := cloud.Check{Name: fmt.Sprintf("filesystem p%d", p.Index)}
			if p.Filesystem != "" {
				c.Passed, c.Message = true, describeFS(p.Filesystem, p.Label)
			} else {
				c.Message = fmt.Sprintf("partition %d (type %s %s, %d bytes at byte %d): no recognised filesystem superblock",
					p.Index, p.Type, p.TypeName, p.Size, p.Start)
			}
			cs = append(cs, c)
		}
	}
	for i := range cs {
		cs[i].Disk = disk
	}
	return cs
}

func describeFS(fs, label string) string {
	if label != "" {
		return fmt.Sprintf("%s (label %q)", fs, label)
	}
	return fs
}

// Machine implements cloud.Machines.
func (d *Driver) Machine(ctx context.Context, id string) (cloud.Machine, error) {
	if err := checkID("machine", id); err != nil {
		return cloud.Machine{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.machines[id]
	if !ok {
		return cloud.Machine{}, fmt.Errorf("machine %q: %w", id, cloud.ErrNotFound)
	}
	return cloneMachine(m), nil
}

// ListMachines implements cloud.Machines.
func (d *Driver) ListMachines(ctx context.Context, migrationID string) ([]cloud.Machine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cloud.Machine
	for _, m := range d.machines {
		if m.MigrationID == migrationID {
			out = append(out, cloneMachine(m))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Terminate implements cloud.Machines.
func (d *Driver) Terminate(ctx context.Context, id string) error {
	return d.discard(ctx, id, cloud.MachineTerminated)
}

// Rollback implements cloud.Machines.
func (d *Driver) Rollback(ctx context.Context, id string) error {
	return d.discard(ctx, id, cloud.MachineRolledBack)
}

func (d *Driver) discard(ctx context.Context, id string, to cloud.MachineState) error {
	if err := checkID("machine", id); err != nil {
		return err
	}
	defer d.lockMachine(id)()
	d.mu.Lock()
	m, ok := d.machines[id]
	live := ok && m.State == cloud.MachineLive
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s machine %q: %w", verb(to), id, cloud.ErrNotFound)
	}
	if to == cloud.MachineTerminated && live {
		return fmt.Errorf("terminate machine %q: %w: it is the live cutover machine (use rollback)", id, cloud.ErrConflict)
	}
	// The VM first (outside d.mu: a guest is given a moment to stop), so
	// that a machine whose disks are gone never has a qemu on them.
	if err := d.deleteVM(ctx, id); err != nil {
		return fmt.Errorf("%s machine %q: %w", verb(to), id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok = d.machines[id]
	if !ok {
		return fmt.Errorf("%s machine %q: %w", verb(to), id, cloud.ErrNotFound)
	}
	m = cloneMachine(m)
	if !m.State.Active() {
		return nil
	}
	if to == cloud.MachineTerminated && m.State == cloud.MachineLive {
		return fmt.Errorf("terminate machine %q: %w: it is the live cutover machine (use rollback)", id, cloud.ErrConflict)
	}
	for k, md := range m.Disks {
		if _, ok := d.disks[md.DiskID]; ok {
			if err := d.deleteDiskLocked(md.DiskID); err != nil {
				return fmt.Errorf("%s machine %q: %w", verb(to), id, err)
			}
		}
		m.Disks[k].DiskID = ""
	}
	m.State = to
	if err := d.writeMeta("machines", id, m); err != nil {
		return fmt.Errorf("%s machine %q: %w", verb(to), id, err)
	}
	d.machines[id] = m
	return nil
}

func verb(s cloud.MachineState) string {
	if s == cloud.MachineRolledBack {
		return "roll back"
	}
	return "terminate"
}

// Teardown implements cloud.Driver: machines, disks and recovery points of
// the migration go, then unreferenced blocks.
func (d *Driver) Teardown(ctx context.Context, migrationID string) error {
	if migrationID == "" {
		return fmt.Errorf("teardown: empty migration id: %w", cloud.ErrInvalid)
	}
	var errs []error
	d.mu.Lock()
	var vms []string
	for id, m := range d.machines {
		if m.MigrationID == migrationID {
			vms = append(vms, id)
		}
	}
	d.mu.Unlock()
	for _, id := range vms {
		errs = append(errs, d.deleteVM(ctx, id))
	}
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	d.mu.Lock()
	for id, m := range d.machines {
		if m.MigrationID != migrationID {
			continue
		}
		for _, md := range m.Disks {
			if _, ok := d.disks[md.DiskID]; md.DiskID != "" && ok {
				errs = append(errs, d.deleteDiskLocked(md.DiskID))
			}
		}
		if err := d.removeMeta("machines", id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(d.machines, id)
	}
	var pointIDs []string
	for id, p := range d.points {
		if p.MigrationID == migrationID {
			pointIDs = append(pointIDs, id)
		}
	}
	for id, disk := range d.disks {
		if disk.MigrationID == migrationID {
			errs = append(errs, d.deleteDiskLocked(id))
		}
	}
	d.mu.Unlock()
	for _, id := range pointIDs {
		errs = append(errs, d.deletePointLocked(id, false))
	}
	if _, _, err := d.gcLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown migration %q: %w", migrationID, err)
	}
	return nil
}

// usedBy returns an active machine using the disk or point, if any. Caller
// holds d.mu.
func (d *Driver) usedBy(match func(cloud.MachineDisk) bool) (cloud.Machine, bool) {
	for _, m := range d.machines {
		if m.Uses(match) {
			return m, true
		}
	}
	return cloud.Machine{}, false
}

// loadLegacyInstances reads the one-disk instances of versions before
// machines as machines of one disk (they are rewritten as machines the next
// time they change, and the legacy file goes).
func (d *Driver) loadLegacyInstances() error {
	dir := filepath.Join(d.dir, "meta/instances")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return loadJSON(dir, func(id string, b []byte) error {
		var in struct {
			ID, RecoveryPointID, SourceDiskID, DiskID, MigrationID string
			Kind                                                   cloud.LaunchKind
			State                                                  cloud.MachineState
			Checks                                                 []cloud.Check
		}
		if err := json.Unmarshal(b, &in); err != nil {
			return err
		}
		if _, ok := d.machines[id]; ok {
			return nil
		}
		m := cloud.Machine{ID: id, Token: id, Kind: in.Kind, MigrationID: in.MigrationID, State: in.State, BootMode: cloud.BootBIOS, Checks: in.Checks,
			Disks: []cloud.MachineDisk{{PointID: in.RecoveryPointID, SourceDiskID: in.SourceDiskID, DiskID: in.DiskID}}}
		if err := d.writeMeta("machines", id, m); err != nil {
			return err
		}
		d.machines[id] = m
		return os.Remove(filepath.Join(dir, id+".json"))
	})
}

// Capabilities implements cloud.Driver.
func (d *Driver) Capabilities() cloud.Capabilities {
	modes := []cloud.BootMode{cloud.BootBIOS}
	if d.boot == nil && d.vms == nil {
		modes = append(modes, cloud.BootUEFI) // nothing boots: the firmware does not matter
	}
	return cloud.Capabilities{
		MaxDisksPerMachine: 16, // virtio-blk slots a qemu boot is given here
		BootModes:          modes,
		Boots:              d.boot != nil || d.vms != nil,
		GatewayInProcess:   true,
		PointMethod:        string(d.mode),
	}
}
