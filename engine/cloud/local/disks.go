package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// CreateDisk implements cloud.Disks: a sparse file truncated to size (no
// block is allocated until written).
func (d *Driver) CreateDisk(ctx context.Context, spec cloud.DiskSpec) (cloud.Disk, error) {
	if err := checkID("disk", spec.ID); err != nil {
		return cloud.Disk{}, err
	}
	if spec.SizeBytes <= 0 {
		return cloud.Disk{}, fmt.Errorf("create disk %q: size %d bytes must be positive: %w", spec.ID, spec.SizeBytes, cloud.ErrInvalid)
	}
	if err := ctxErr(ctx); err != nil {
		return cloud.Disk{}, err
	}
	return d.createDisk(spec, "", nil)
}

// createDisk makes disk meta and file; fill, if set, writes the content into
// the new (sparse, truncated) file at path before the disk becomes visible.
func (d *Driver) createDisk(spec cloud.DiskSpec, launchedBy string, fill func(f *os.File) error) (cloud.Disk, error) {
	d.mu.Lock()
	if _, ok := d.disks[spec.ID]; ok {
		d.mu.Unlock()
		return cloud.Disk{}, fmt.Errorf("create disk %q: %w: a disk with that id exists", spec.ID, cloud.ErrConflict)
	}
	disk := cloud.Disk{ID: spec.ID, SizeBytes: spec.SizeBytes, MigrationID: spec.MigrationID, CreatedAt: d.clock().UTC(), LaunchedBy: launchedBy}
	d.disks[spec.ID] = disk // reserve the id
	d.mu.Unlock()

	err := func() error {
		f, err := os.CreateTemp(d.dir+"/tmp", "disk-*")
		if err != nil {
			return err
		}
		tmp := f.Name()
		defer os.Remove(tmp)
		err = f.Truncate(spec.SizeBytes)
		if err == nil && fill != nil {
			err = fill(f)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, d.diskFile(spec.ID)); err != nil {
			return err
		}
		if err := syncDir(d.dir + "/disks"); err != nil {
			return err
		}
		return d.writeMeta("disks", spec.ID, disk)
	}()
	if err != nil {
		os.Remove(d.diskFile(spec.ID))
		d.mu.Lock()
		delete(d.disks, spec.ID)
		d.mu.Unlock()
		return cloud.Disk{}, fmt.Errorf("create disk %q: %w", spec.ID, err)
	}
	return disk, nil
}

// ResizeDisk implements cloud.Disks (grow only; the new tail is a hole).
func (d *Driver) ResizeDisk(ctx context.Context, id string, sizeBytes int64) (cloud.Disk, error) {
	if err := checkID("disk", id); err != nil {
		return cloud.Disk{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	disk, ok := d.disks[id]
	if !ok {
		return cloud.Disk{}, fmt.Errorf("resize disk %q: %w", id, cloud.ErrNotFound)
	}
	if sizeBytes <= 0 || sizeBytes < disk.SizeBytes {
		return cloud.Disk{}, fmt.Errorf("resize disk %q to %d bytes: must be positive and not below the current %d bytes (disks only grow): %w",
			id, sizeBytes, disk.SizeBytes, cloud.ErrInvalid)
	}
	if err := os.Truncate(d.diskFile(id), sizeBytes); err != nil {
		return cloud.Disk{}, fmt.Errorf("resize disk %q: %w", id, err)
	}
	disk.SizeBytes = sizeBytes
	if err := d.writeMeta("disks", id, disk); err != nil {
		return cloud.Disk{}, fmt.Errorf("resize disk %q: %w", id, err)
	}
	d.disks[id] = disk
	return disk, nil
}

// DeleteDisk implements cloud.Disks.
func (d *Driver) DeleteDisk(ctx context.Context, id string) error {
	if err := checkID("disk", id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.disks[id]; !ok {
		return fmt.Errorf("delete disk %q: %w", id, cloud.ErrNotFound)
	}
	if m, ok := d.usedBy(func(md cloud.MachineDisk) bool { return md.DiskID == id }); ok {
		return fmt.Errorf("delete disk %q: %w: it backs %s machine %s (terminate or roll it back first)", id, cloud.ErrConflict, m.State, m.ID)
	}
	return d.deleteDiskLocked(id)
}

func (d *Driver) deleteDiskLocked(id string) error {
	// Meta first: once it is gone the disk no longer exists, and New removes
	// an image left without meta.
	if err := d.removeMeta("disks", id); err != nil {
		return fmt.Errorf("delete disk %q: %w", id, err)
	}
	delete(d.disks, id)
	if err := os.Remove(d.diskFile(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete disk %q: %w", id, err)
	}
	return nil
}

// Disk implements cloud.Disks.
func (d *Driver) Disk(ctx context.Context, id string) (cloud.Disk, error) {
	if err := checkID("disk", id); err != nil {
		return cloud.Disk{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	disk, ok := d.disks[id]
	if !ok {
		return cloud.Disk{}, fmt.Errorf("disk %q: %w", id, cloud.ErrNotFound)
	}
	return disk, nil
}

// DiskPath is the image file of a disk, where an in-process gateway writes.
// Errors: ErrInvalid, ErrNotFound.
func (d *Driver) DiskPath(id string) (string, error) {
	if _, err := d.Disk(context.Background(), id); err != nil {
		return "", err
	}
	return d.diskFile(id), nil
}

// PrepareGateway implements cloud.Gateways: the gateway runs in-process and
// pwrites into the disk's image file.
func (d *Driver) PrepareGateway(ctx context.Context, diskID string) (cloud.GatewayEndpoint, error) {
	disk, err := d.Disk(ctx, diskID)
	if err != nil {
		return cloud.GatewayEndpoint{}, fmt.Errorf("prepare gateway: %w", err)
	}
	return cloud.GatewayEndpoint{DiskID: diskID, SizeBytes: disk.SizeBytes, Path: d.diskFile(diskID)}, nil
}

// ReleaseGateway implements cloud.Gateways; nothing to release locally.
func (d *Driver) ReleaseGateway(ctx context.Context, diskID string) error {
	return checkID("disk", diskID)
}
