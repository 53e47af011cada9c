package alibaba

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

const gib = 1 << 30

// diskRec is a Ferry disk: its ECS disk and the exact size Ferry asked
// for (ECS sizes disks in whole GiB, at least the category's minimum).
type diskRec struct {
	ID          string    `json:"id"`
	ECS         string    `json:"ecs"` // empty while the CreateDisk is in flight
	Nonce       string    `json:"nonce"`
	SizeBytes   int64     `json:"size_bytes"`
	MigrationID string    `json:"migration_id"`
	CreatedAt   time.Time `json:"created_at"`
	LaunchedBy  string    `json:"launched_by,omitempty"`
	// Gateway is the gateway instance the disk is attached to, if any.
	Gateway string `json:"gateway,omitempty"`
}

func (r diskRec) disk() cloud.Disk {
	return cloud.Disk{ID: r.ID, SizeBytes: r.SizeBytes, MigrationID: r.MigrationID, CreatedAt: r.CreatedAt, LaunchedBy: r.LaunchedBy}
}

func diskKey(id string) string { return "disk/" + id }

// minGiB is the smallest disk of a category (ECS's limits).
func minGiB(category string) int {
	switch category {
	case "cloud":
		return 5
	case "cloud_auto":
		return 1
	}
	return 20
}

func sizeGiB(bytes int64, category string) int {
	n := int((bytes + gib - 1) / gib)
	return max(n, minGiB(category))
}

func (d *Driver) diskRec(ctx context.Context, id string) (diskRec, error) {
	if err := checkID("disk", id); err != nil {
		return diskRec{}, err
	}
	var r diskRec
	if err := getJSON(ctx, d.st, diskKey(id), &r); err != nil {
		if errors.Is(err, cloud.ErrNotFound) {
			return r, fmt.Errorf("disk %q: %w", id, cloud.ErrNotFound)
		}
		return r, err
	}
	if r.ECS == "" {
		return r, fmt.Errorf("disk %q is still being created: %w", id, cloud.ErrNotFound)
	}
	return r, nil
}

// CreateDisk implements cloud.Disks: an ECS data disk of at least
// SizeBytes (whole GiB), tagged with its migration. The record is written
// before the call with a fresh nonce in the ClientToken, so a CreateDisk
// repeated after a crash makes no second disk, and one after a DeleteDisk
// of the same id makes a new one.
func (d *Driver) CreateDisk(ctx context.Context, spec cloud.DiskSpec) (cloud.Disk, error) {
	if err := checkID("disk", spec.ID); err != nil {
		return cloud.Disk{}, err
	}
	if spec.SizeBytes <= 0 {
		return cloud.Disk{}, fmt.Errorf("disk %q: size %d: %w", spec.ID, spec.SizeBytes, cloud.ErrInvalid)
	}
	var r diskRec
	err := getJSON(ctx, d.st, diskKey(spec.ID), &r)
	switch {
	case err == nil && r.ECS != "":
		return cloud.Disk{}, fmt.Errorf("disk %q exists: %w", spec.ID, cloud.ErrConflict)
	case err == nil && (r.SizeBytes != spec.SizeBytes || r.MigrationID != spec.MigrationID):
		return cloud.Disk{}, fmt.Errorf("disk %q is being created with another size or migration: %w", spec.ID, cloud.ErrConflict)
	case errors.Is(err, cloud.ErrNotFound):
		r = diskRec{ID: spec.ID, Nonce: newNonce(), SizeBytes: spec.SizeBytes, MigrationID: spec.MigrationID, CreatedAt: d.now()}
		if err := putJSON(ctx, d.st, diskKey(spec.ID), r); err != nil {
			return cloud.Disk{}, err
		}
	case err != nil:
		return cloud.Disk{}, err
	}
	sw, err := d.vswitch(ctx)
	if err != nil {
		return cloud.Disk{}, err
	}
	id, err := d.c.CreateDisk(ctx, DiskSpec{Token: d.token("disk", spec.ID, r.Nonce), Name: "ferry-" + spec.ID, ZoneID: sw.ZoneID,
		SizeGiB: sizeGiB(spec.SizeBytes, d.set.diskCategory), Category: d.set.diskCategory,
		Tags: d.tags(spec.MigrationID, "target", spec.ID)})
	if err != nil {
		if !errors.Is(err, ErrUnknownOutcome) && !errors.Is(err, ErrThrottled) {
			d.st.Delete(ctx, diskKey(spec.ID))
		}
		return cloud.Disk{}, fmt.Errorf("disk %q: %w", spec.ID, err)
	}
	r.ECS = id
	if err := putJSON(ctx, d.st, diskKey(spec.ID), r); err != nil {
		return cloud.Disk{}, err
	}
	return r.disk(), nil
}

// ResizeDisk implements cloud.Disks.
func (d *Driver) ResizeDisk(ctx context.Context, id string, size int64) (cloud.Disk, error) {
	r, err := d.diskRec(ctx, id)
	if err != nil {
		return cloud.Disk{}, err
	}
	if size <= 0 || size < r.SizeBytes {
		return cloud.Disk{}, fmt.Errorf("disk %q: resize to %d bytes (it has %d; disks only grow): %w", id, size, r.SizeBytes, cloud.ErrInvalid)
	}
	ed, err := d.c.Disk(ctx, r.ECS)
	if err != nil {
		return cloud.Disk{}, err
	}
	if want := sizeGiB(size, ed.Category); want > ed.SizeGiB {
		if err := d.settle(ctx, r.ECS); err != nil {
			return cloud.Disk{}, err
		}
		if err := d.c.ResizeDisk(ctx, r.ECS, want, d.token("resize", id, r.Nonce, fmt.Sprint(want))); err != nil {
			return cloud.Disk{}, fmt.Errorf("disk %q: %w", id, err)
		}
	}
	r.SizeBytes = size
	if err := putJSON(ctx, d.st, diskKey(id), r); err != nil {
		return cloud.Disk{}, err
	}
	return r.disk(), nil
}

// settle waits while the ECS disk is in a transitional state.
func (d *Driver) settle(ctx context.Context, ecsID string) error {
	return d.c.poll(ctx, func() (bool, error) {
		ed, err := d.c.Disk(ctx, ecsID)
		if err != nil {
			return false, err
		}
		switch ed.Status {
		case "Creating", "Attaching", "Detaching", "ReIniting":
			return false, nil
		}
		return true, nil
	})
}

// DeleteDisk implements cloud.Disks: the disk is detached from its gateway
// first; its recovery points (snapshots) stay.
func (d *Driver) DeleteDisk(ctx context.Context, id string) error {
	r, err := d.diskRec(ctx, id)
	if err != nil {
		return err
	}
	if m, ok, err := d.usedBy(ctx, func(md cloud.MachineDisk) bool { return md.DiskID == id }); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("disk %q backs machine %s: %w", id, m.ID, cloud.ErrConflict)
	}
	if err := d.deleteECSDisk(ctx, r.ECS); err != nil {
		return fmt.Errorf("disk %q: %w", id, err)
	}
	if err := d.detachFromGateway(ctx, r); err != nil {
		return err
	}
	return d.st.Delete(ctx, diskKey(id))
}

// deleteECSDisk detaches the disk from whatever holds it and deletes it;
// one already gone is not an error.
func (d *Driver) deleteECSDisk(ctx context.Context, ecsID string) error {
	if err := d.settle(ctx, ecsID); err != nil {
		if errors.Is(err, cloud.ErrNotFound) {
			return nil
		}
		return err
	}
	ed, err := d.c.Disk(ctx, ecsID)
	if errors.Is(err, cloud.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if ed.InstanceID != "" {
		if err := d.c.DetachDisk(ctx, ecsID, ed.InstanceID); err != nil {
			return err
		}
	}
	return d.c.DeleteDisk(ctx, ecsID)
}

// Disk implements cloud.Disks.
func (d *Driver) Disk(ctx context.Context, id string) (cloud.Disk, error) {
	r, err := d.diskRec(ctx, id)
	if err != nil {
		return cloud.Disk{}, err
	}
	return r.disk(), nil
}

// ECSDiskID is the ECS id of a Ferry disk (a target or a machine's).
func (d *Driver) ECSDiskID(ctx context.Context, id string) (string, error) {
	r, err := d.diskRec(ctx, id)
	return r.ECS, err
}
