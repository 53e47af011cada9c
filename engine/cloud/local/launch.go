package local

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect"
)

// Launch implements cloud.Launcher: the point is materialised into a new
// disk "<instance id>-disk" and checked; the source disk is only read.
func (d *Driver) Launch(ctx context.Context, spec cloud.LaunchSpec) (cloud.Instance, error) {
	if spec.Kind != cloud.LaunchTest && spec.Kind != cloud.LaunchCutover {
		return cloud.Instance{}, fmt.Errorf("launch: kind %q (want test or cutover): %w", spec.Kind, cloud.ErrInvalid)
	}
	p, err := d.point(spec.RecoveryPointID)
	if err != nil {
		return cloud.Instance{}, fmt.Errorf("launch %s: %w", spec.Kind, err)
	}
	id := newID("i")
	in := cloud.Instance{
		ID: id, Kind: spec.Kind, RecoveryPointID: p.ID, SourceDiskID: p.DiskID, DiskID: id + "-disk",
		MigrationID: spec.MigrationID, CreatedAt: d.clock().UTC(),
	}
	if in.MigrationID == "" {
		in.MigrationID = p.MigrationID
	}
	d.mu.Lock()
	if spec.Kind == cloud.LaunchCutover {
		pts := d.pointsOf(p.DiskID)
		if newest := pts[len(pts)-1]; newest.ID != p.ID {
			d.mu.Unlock()
			return cloud.Instance{}, fmt.Errorf("cutover from point %s of disk %s: %w: the newest point is %s (take the final point, then cut over from it)",
				p.ID, p.DiskID, cloud.ErrConflict, newest.ID)
		}
		for _, other := range d.instances {
			if other.SourceDiskID == p.DiskID && other.State == cloud.InstanceLive {
				d.mu.Unlock()
				return cloud.Instance{}, fmt.Errorf("cutover of disk %s: %w: instance %s is already live (roll it back first)", p.DiskID, cloud.ErrConflict, other.ID)
			}
		}
		if d.cutoverBusy[p.DiskID] {
			d.mu.Unlock()
			return cloud.Instance{}, fmt.Errorf("cutover of disk %s: %w: another cutover of it is in progress", p.DiskID, cloud.ErrConflict)
		}
		d.cutoverBusy[p.DiskID] = true
		defer func() {
			d.mu.Lock()
			delete(d.cutoverBusy, p.DiskID)
			d.mu.Unlock()
		}()
	}
	// Reserve the instance so a concurrent cutover sees it.
	in.State = cloud.InstanceFailed
	d.instances[id] = in
	d.mu.Unlock()
	fail := func(err error) (cloud.Instance, error) {
		d.mu.Lock()
		delete(d.instances, id)
		d.mu.Unlock()
		return cloud.Instance{}, fmt.Errorf("launch %s from point %s: %w", spec.Kind, p.ID, err)
	}

	_, err = d.createDisk(cloud.DiskSpec{ID: in.DiskID, SizeBytes: p.SizeBytes, MigrationID: in.MigrationID}, id,
		func(f *os.File) error { return d.materialise(ctx, p, f) })
	if err != nil {
		return fail(err)
	}
	how := "verified block by block"
	if p.Method == string(ModeReflink) {
		how = "cloned with FICLONE"
	}
	in.Checks = append([]cloud.Check{{Name: "materialise", Passed: true,
		Message: fmt.Sprintf("%d bytes from recovery point %s (%s, manifest %s) %s", p.SizeBytes, p.ID, p.Method, p.ManifestDigest, how)}},
		d.checks(ctx, d.diskFile(in.DiskID), p.SizeBytes)...)
	switch {
	case !in.Passed():
		in.State = cloud.InstanceFailed
	case spec.Kind == cloud.LaunchCutover:
		in.State = cloud.InstanceLive
	default:
		in.State = cloud.InstanceRunning
	}
	if err := d.writeMeta("instances", id, in); err != nil {
		d.mu.Lock()
		d.deleteDiskLocked(in.DiskID)
		d.mu.Unlock()
		return fail(err)
	}
	d.mu.Lock()
	d.instances[id] = in
	d.mu.Unlock()
	return in, nil
}

// checks inspects a launched disk image: partition table, a filesystem on
// every partition that should hold one, and the optional boot.
func (d *Driver) checks(ctx context.Context, path string, size int64) []cloud.Check {
	f, err := os.Open(path)
	if err != nil {
		return []cloud.Check{{Name: "partition-table", Message: fmt.Sprintf("open %s: %v", path, err)}}
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
	return append(cs, d.bootCheck(ctx, path))
}

func describeFS(fs, label string) string {
	if label != "" {
		return fmt.Sprintf("%s (label %q)", fs, label)
	}
	return fs
}

// Instance implements cloud.Launcher.
func (d *Driver) Instance(ctx context.Context, id string) (cloud.Instance, error) {
	if err := checkID("instance", id); err != nil {
		return cloud.Instance{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.instances[id]
	if !ok {
		return cloud.Instance{}, fmt.Errorf("instance %q: %w", id, cloud.ErrNotFound)
	}
	return in, nil
}

// Terminate implements cloud.Launcher.
func (d *Driver) Terminate(ctx context.Context, id string) error {
	return d.discard(id, cloud.InstanceTerminated)
}

// Rollback implements cloud.Launcher.
func (d *Driver) Rollback(ctx context.Context, id string) error {
	return d.discard(id, cloud.InstanceRolledBack)
}

func (d *Driver) discard(id string, to cloud.InstanceState) error {
	if err := checkID("instance", id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.instances[id]
	if !ok {
		return fmt.Errorf("%s instance %q: %w", verb(to), id, cloud.ErrNotFound)
	}
	if !active(in.State) {
		return nil
	}
	if to == cloud.InstanceTerminated && in.State == cloud.InstanceLive {
		return fmt.Errorf("terminate instance %q: %w: it is the live cutover instance (use rollback)", id, cloud.ErrConflict)
	}
	if in.DiskID != "" {
		if _, ok := d.disks[in.DiskID]; ok {
			if err := d.deleteDiskLocked(in.DiskID); err != nil {
				return fmt.Errorf("%s instance %q: %w", verb(to), id, err)
			}
		}
	}
	in.State, in.DiskID = to, ""
	if err := d.writeMeta("instances", id, in); err != nil {
		return fmt.Errorf("%s instance %q: %w", verb(to), id, err)
	}
	d.instances[id] = in
	return nil
}

func verb(s cloud.InstanceState) string {
	if s == cloud.InstanceRolledBack {
		return "roll back"
	}
	return "terminate"
}

// Teardown implements cloud.Driver: instances, disks and recovery points of
// the migration go, then unreferenced blocks.
func (d *Driver) Teardown(ctx context.Context, migrationID string) error {
	if migrationID == "" {
		return fmt.Errorf("teardown: empty migration id: %w", cloud.ErrInvalid)
	}
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	var errs []error
	d.mu.Lock()
	for id, in := range d.instances {
		if in.MigrationID != migrationID {
			continue
		}
		if in.DiskID != "" {
			if _, ok := d.disks[in.DiskID]; ok {
				errs = append(errs, d.deleteDiskLocked(in.DiskID))
			}
		}
		if err := d.removeMeta("instances", id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(d.instances, id)
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
