package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// CreateRecoveryPoint implements cloud.RecoveryPoints. In CAS mode it stores
// the disk's non-zero blocks not already stored; in reflink mode it clones the
// image and records a manifest of block hashes. Either way the point's meta
// file is written last, so an interrupted creation leaves nothing visible.
func (d *Driver) CreateRecoveryPoint(ctx context.Context, diskID string, labels map[string]string) (cloud.RecoveryPoint, error) {
	if err := checkID("disk", diskID); err != nil {
		return cloud.RecoveryPoint{}, err
	}
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	d.mu.Lock()
	disk, ok := d.disks[diskID]
	d.mu.Unlock()
	if !ok {
		return cloud.RecoveryPoint{}, fmt.Errorf("create recovery point of disk %q: %w", diskID, cloud.ErrNotFound)
	}
	p, err := d.createPoint(ctx, disk, labels)
	if err != nil {
		return cloud.RecoveryPoint{}, fmt.Errorf("create recovery point of disk %q: %w", diskID, err)
	}
	return p.RecoveryPoint, nil
}

func (d *Driver) createPoint(ctx context.Context, disk cloud.Disk, labels map[string]string) (pointMeta, error) {
	id := newID("rp")
	src, err := os.Open(d.diskFile(disk.ID))
	if err != nil {
		return pointMeta{}, err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return pointMeta{}, err
	}
	if info.Size() != disk.SizeBytes {
		return pointMeta{}, fmt.Errorf("image is %d bytes but the disk is %d (written past its end? resize the disk first): %w",
			info.Size(), disk.SizeBytes, cloud.ErrConflict)
	}
	size := disk.SizeBytes
	var res scanResult
	imgTmp := ""
	if d.mode == ModeReflink {
		clone, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "clone-*")
		if err != nil {
			return pointMeta{}, err
		}
		imgTmp = clone.Name()
		defer os.Remove(imgTmp)
		err = cloneFile(clone, src)
		if err == nil {
			res, err = d.scan(ctx, clone, size, false)
		}
		if err == nil {
			err = clone.Sync()
		}
		clone.Close()
		if err != nil {
			return pointMeta{}, err
		}
	} else {
		res, err = d.scan(ctx, src, size, true)
		if err == nil {
			err = d.syncBlocks(res.newBlocks)
		}
		if err != nil {
			// The blocks written so far are unreferenced; collect them.
			for _, p := range res.newBlocks {
				os.Remove(p)
			}
			return pointMeta{}, err
		}
	}
	manifest := encodeManifest(d.bs, size, res.entries)
	if err := d.writeAtomic(filepath.Join(d.dir, "points", id+".manifest"), manifest); err != nil {
		return pointMeta{}, err
	}
	if imgTmp != "" {
		if err := os.Rename(imgTmp, filepath.Join(d.dir, "points", id+".img")); err != nil {
			return pointMeta{}, err
		}
		if err := syncDir(filepath.Join(d.dir, "points")); err != nil {
			return pointMeta{}, err
		}
	}
	d.mu.Lock()
	d.seq++
	seq := d.seq
	d.mu.Unlock()
	p := pointMeta{
		RecoveryPoint: cloud.RecoveryPoint{
			ID: id, DiskID: disk.ID, MigrationID: disk.MigrationID, CreatedAt: d.clock().UTC(), SizeBytes: size,
			ManifestDigest: digest(manifest), Labels: maps.Clone(labels), Method: string(d.mode), StoredBytes: res.stored,
		},
		Seq: seq, BlockSize: d.bs,
	}
	if err := ctxErr(ctx); err != nil {
		return pointMeta{}, err
	}
	if err := d.writeMeta("points", id, p); err != nil { // the commit
		return pointMeta{}, err
	}
	d.mu.Lock()
	d.points[id] = p
	d.mu.Unlock()
	return p, nil
}

// RecoveryPoint implements cloud.RecoveryPoints.
func (d *Driver) RecoveryPoint(ctx context.Context, id string) (cloud.RecoveryPoint, error) {
	p, err := d.point(id)
	return p.RecoveryPoint, err
}

func (d *Driver) point(id string) (pointMeta, error) {
	if err := checkID("recovery point", id); err != nil {
		return pointMeta{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.points[id]
	if !ok {
		return pointMeta{}, fmt.Errorf("recovery point %q: %w", id, cloud.ErrNotFound)
	}
	p.Labels = maps.Clone(p.Labels)
	return p, nil
}

// ListRecoveryPoints implements cloud.RecoveryPoints.
func (d *Driver) ListRecoveryPoints(ctx context.Context, diskID string) ([]cloud.RecoveryPoint, error) {
	if err := checkID("disk", diskID); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cloud.RecoveryPoint
	for _, p := range d.pointsOf(diskID) {
		rp := p.RecoveryPoint
		rp.Labels = maps.Clone(rp.Labels)
		out = append(out, rp)
	}
	return out, nil
}

// DeleteRecoveryPoint implements cloud.RecoveryPoints; blocks other points
// share stay, the rest are collected.
func (d *Driver) DeleteRecoveryPoint(ctx context.Context, id string) error {
	if err := checkID("recovery point", id); err != nil {
		return err
	}
	d.storeMu.Lock()
	defer d.storeMu.Unlock()
	if err := d.deletePointLocked(id, true); err != nil {
		return err
	}
	_, _, err := d.gcLocked(ctx)
	return err
}

// deletePointLocked removes one point; the caller holds storeMu and runs GC.
func (d *Driver) deletePointLocked(id string, refuseInUse bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.points[id]; !ok {
		return fmt.Errorf("delete recovery point %q: %w", id, cloud.ErrNotFound)
	}
	if refuseInUse {
		if m, ok := d.usedBy(func(md cloud.MachineDisk) bool { return md.PointID == id }); ok {
			return fmt.Errorf("delete recovery point %q: %w: %s machine %s was launched from it", id, cloud.ErrConflict, m.State, m.ID)
		}
	}
	if err := d.removeMeta("points", id); err != nil {
		return fmt.Errorf("delete recovery point %q: %w", id, err)
	}
	delete(d.points, id)
	for _, ext := range []string{".manifest", ".img"} {
		if err := os.Remove(filepath.Join(d.dir, "points", id+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete recovery point %q: %w", id, err)
		}
	}
	return nil
}
