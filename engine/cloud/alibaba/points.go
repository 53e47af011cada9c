package alibaba

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// pointRec is a recovery point: an ECS snapshot of a target disk.
type pointRec struct {
	cloud.RecoveryPoint
	Seq int64 `json:"seq"` // creation order (snapshots taken in one second)
}

func pointKey(id string) string { return "point/" + id }

// CreateRecoveryPoint implements cloud.Points: CreateSnapshot of the disk's
// ECS disk, followed by DescribeSnapshots until it is accomplished (a point
// is visible only once complete). ECS keeps the snapshot point-in-time as of
// the call; the caller has quiesced the gateway first. The snapshot is
// tagged with its disk and migration, so one whose record a crash lost is
// still found and removed by Teardown.
func (d *Driver) CreateRecoveryPoint(ctx context.Context, diskID string, labels map[string]string) (cloud.RecoveryPoint, error) {
	r, err := d.diskRec(ctx, diskID)
	if err != nil {
		return cloud.RecoveryPoint{}, err
	}
	tags := d.tags(r.MigrationID, "point", diskID)
	id, err := d.c.CreateSnapshot(ctx, SnapshotSpec{Token: d.token("point", diskID, r.Nonce, newNonce()), DiskID: r.ECS,
		Name: "ferry-" + diskID, Description: "Ferry recovery point of " + diskID, Tags: tags})
	if err != nil {
		return cloud.RecoveryPoint{}, fmt.Errorf("recovery point of %s: %w", diskID, err)
	}
	sn, err := d.c.WaitSnapshot(ctx, id, nil)
	if err != nil {
		return cloud.RecoveryPoint{}, fmt.Errorf("recovery point %s of %s: %w", id, diskID, err)
	}
	created := sn.CreatedAt
	if created.IsZero() {
		created = d.now()
	}
	p := pointRec{RecoveryPoint: cloud.RecoveryPoint{ID: id, DiskID: diskID, MigrationID: r.MigrationID, CreatedAt: created,
		SizeBytes: r.SizeBytes, ManifestDigest: "ecs-snapshot:" + id, Labels: maps.Clone(labels), Method: "snapshot"},
		Seq: time.Now().UnixNano()}
	if err := putJSON(ctx, d.st, pointKey(id), p); err != nil {
		return cloud.RecoveryPoint{}, err
	}
	return p.RecoveryPoint, nil
}

func (d *Driver) pointRec(ctx context.Context, id string) (pointRec, error) {
	if err := checkID("recovery point", id); err != nil {
		return pointRec{}, err
	}
	var p pointRec
	if err := getJSON(ctx, d.st, pointKey(id), &p); err != nil {
		if errors.Is(err, cloud.ErrNotFound) {
			return p, fmt.Errorf("recovery point %q: %w", id, cloud.ErrNotFound)
		}
		return p, err
	}
	return p, nil
}

// RecoveryPoint implements cloud.Points.
func (d *Driver) RecoveryPoint(ctx context.Context, id string) (cloud.RecoveryPoint, error) {
	p, err := d.pointRec(ctx, id)
	return p.RecoveryPoint, err
}

func (d *Driver) points(ctx context.Context, keep func(pointRec) bool) ([]pointRec, error) {
	all, err := listJSON[pointRec](ctx, d.st, "point/")
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, p := range all {
		if keep(p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// ListRecoveryPoints implements cloud.Points: oldest first.
func (d *Driver) ListRecoveryPoints(ctx context.Context, diskID string) ([]cloud.RecoveryPoint, error) {
	ps, err := d.points(ctx, func(p pointRec) bool { return p.DiskID == diskID })
	if err != nil {
		return nil, err
	}
	out := make([]cloud.RecoveryPoint, len(ps))
	for i, p := range ps {
		out[i] = p.RecoveryPoint
	}
	return out, nil
}

// DeleteRecoveryPoint implements cloud.Points: DeleteSnapshot (Force: disks
// made from it keep their bytes). Errors: ErrConflict while a machine that
// is not terminated was made from it.
func (d *Driver) DeleteRecoveryPoint(ctx context.Context, id string) error {
	if _, err := d.pointRec(ctx, id); err != nil {
		return err
	}
	if m, ok, err := d.usedBy(ctx, func(md cloud.MachineDisk) bool { return md.PointID == id }); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("recovery point %q: machine %s was launched from it: %w", id, m.ID, cloud.ErrConflict)
	}
	if err := d.c.DeleteSnapshot(ctx, id); err != nil {
		return fmt.Errorf("recovery point %q: %w", id, err)
	}
	return d.st.Delete(ctx, pointKey(id))
}
