package alibaba

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Teardown implements cloud.Driver: everything of the migration goes —
// machines (instances, images, their snapshots and disks), recovery points,
// target disks, the gateway and its security group — first through the
// records, then by a sweep of what ECS lists with the migration's tag (what
// a crash between a create and its record would otherwise leave).
// Idempotent.
func (d *Driver) Teardown(ctx context.Context, mid string) error {
	if mid == "" {
		return fmt.Errorf("teardown of no migration: %w", cloud.ErrInvalid)
	}
	ms, err := d.machines(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.MigrationID != mid {
			continue
		}
		if err := d.cleanup(ctx, &m); err != nil {
			return fmt.Errorf("teardown of machine %s: %w", m.ID, err)
		}
		if err := d.st.Delete(ctx, machineKey(m.ID)); err != nil {
			return err
		}
	}
	ps, err := d.points(ctx, func(p pointRec) bool { return p.MigrationID == mid })
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := d.c.DeleteSnapshot(ctx, p.ID); err != nil {
			return fmt.Errorf("teardown of point %s: %w", p.ID, err)
		}
		if err := d.st.Delete(ctx, pointKey(p.ID)); err != nil {
			return err
		}
	}
	disks, err := listJSON[diskRec](ctx, d.st, "disk/")
	if err != nil {
		return err
	}
	for _, r := range disks {
		if r.MigrationID != mid {
			continue
		}
		if r.ECS != "" {
			if err := d.deleteECSDisk(ctx, r.ECS); err != nil {
				return fmt.Errorf("teardown of disk %s: %w", r.ID, err)
			}
		}
		if err := d.st.Delete(ctx, diskKey(r.ID)); err != nil {
			return err
		}
	}
	var g gatewayRec
	switch err := getJSON(ctx, d.st, gatewayKey(mid), &g); {
	case err == nil:
		if err := d.deleteGateway(ctx, g); err != nil {
			return err
		}
	case !errors.Is(err, cloud.ErrNotFound):
		return err
	}
	return d.sweep(ctx, mid)
}

// sweep deletes what ECS lists with the migration's tag, in an order ECS
// accepts: instances (their disks go or come free), images, disks,
// snapshots, security groups.
func (d *Driver) sweep(ctx context.Context, mid string) error {
	tag := map[string]string{tagMigration: mid}
	ins, err := d.c.Instances(ctx, Filter{Tags: tag})
	if err != nil {
		return err
	}
	for _, in := range ins {
		if err := d.c.DeleteInstance(ctx, in.ID); err != nil {
			return fmt.Errorf("sweep: instance %s: %w", in.ID, err)
		}
	}
	ims, err := d.c.Images(ctx, Filter{Tags: tag})
	if err != nil {
		return err
	}
	for _, im := range ims {
		if err := d.c.DeleteImage(ctx, im.ID); err != nil {
			return fmt.Errorf("sweep: image %s: %w", im.ID, err)
		}
	}
	eds, err := d.c.Disks(ctx, Filter{Tags: tag})
	if err != nil {
		return err
	}
	for _, ed := range eds {
		if err := d.deleteECSDisk(ctx, ed.ID); err != nil {
			return fmt.Errorf("sweep: disk %s: %w", ed.ID, err)
		}
	}
	sns, err := d.c.Snapshots(ctx, Filter{Tags: tag})
	if err != nil {
		return err
	}
	for _, sn := range sns {
		if err := d.c.DeleteSnapshot(ctx, sn.ID); err != nil {
			return fmt.Errorf("sweep: snapshot %s: %w", sn.ID, err)
		}
	}
	sgs, err := d.c.SecurityGroups(ctx, Filter{Tags: tag})
	if err != nil {
		return err
	}
	for _, sg := range sgs {
		if err := d.c.DeleteSecurityGroup(ctx, sg.ID); err != nil {
			return fmt.Errorf("sweep: security group %s: %w", sg.ID, err)
		}
	}
	return nil
}
