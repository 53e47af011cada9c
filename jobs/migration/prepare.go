package migration

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/step"
)

// prepareDisks (prepare, phase 1) takes the host's disks into the
// migration (once: inventory updates later do not change what it
// replicates) and makes a target disk of each at the cloud, at least as
// large.
func prepareDisks(ctx context.Context, r *run) (outcome, error) {
	mig := r.mig
	if mig.State != ferry.MigrationPending && mig.State != ferry.MigrationPreparing {
		return done(string(step.StatusCanceled), "nothing to prepare: the migration is %s", mig.State), nil
	}
	h, err := mig.QueryHost().Only(ctx)
	if err != nil {
		return outcome{}, fmt.Errorf("host of migration %d: %w", mig.ID, err)
	}
	disks := mig.Disks
	if len(disks) == 0 {
		rows, err := h.QueryDisks().All(ctx)
		if err != nil {
			return outcome{}, err
		}
		seen := map[string]bool{}
		for _, d := range rows {
			if d.SizeBytes <= 0 {
				continue
			}
			id := TargetDiskID(mig.ID, d.Name)
			if seen[id] {
				return outcome{}, fail("host %s reports two disks named %q; rename one in the inventory", h.Name, d.Name)
			}
			seen[id] = true
			disks = append(disks, ferry.MigrationDisk{Name: d.Name, Device: d.Device, SizeBytes: d.SizeBytes, TargetDiskID: id})
		}
	}
	if len(disks) == 0 {
		return outcome{}, fail("host %s has no disks with a known size in its inventory: run the agent on it (ferry agent run) so that it reports them, then start the migration again", h.Name)
	}
	if max := r.drv.Capabilities().MaxDisksPerMachine; max > 0 && len(disks) > max {
		return outcome{}, fail("host %s has %d disks; the %s cloud launches machines of at most %d", h.Name, len(disks), r.drv.Name(), max)
	}
	var total int64
	for _, d := range disks {
		total += d.SizeBytes
		got, err := r.drv.Disk(ctx, d.TargetDiskID)
		switch {
		case errors.Is(err, cloud.ErrNotFound):
			_, err := r.drv.CreateDisk(ctx, cloud.DiskSpec{ID: d.TargetDiskID, SizeBytes: d.SizeBytes, MigrationID: strconv.Itoa(mig.ID)})
			if errors.Is(err, cloud.ErrInvalid) {
				return outcome{}, fail("create target disk for %s: %v", d.Name, err)
			}
			if err != nil && !errors.Is(err, cloud.ErrConflict) {
				return outcome{}, fmt.Errorf("create target disk %s: %w", d.TargetDiskID, err)
			}
		case err != nil:
			return outcome{}, fmt.Errorf("target disk %s: %w", d.TargetDiskID, err)
		case got.SizeBytes < d.SizeBytes:
			if _, err := r.drv.ResizeDisk(ctx, d.TargetDiskID, d.SizeBytes); err != nil {
				return outcome{}, fmt.Errorf("grow target disk %s: %w", d.TargetDiskID, err)
			}
		}
	}
	err = r.tx(ctx, func(tx *ent.Tx) error {
		if mig.State == ferry.MigrationPending {
			if err := r.l.transition(ctx, tx.Client(), mig, ferry.MigrationPreparing, nil); err != nil {
				return err
			}
		}
		return tx.Migration.UpdateOneID(mig.ID).SetDisks(disks).SetBytesTotal(total).Exec(ctx)
	})
	if err != nil {
		return outcome{}, err
	}
	return next("%d target disks of %d bytes in all on the %s cloud", len(disks), total, r.drv.Name()), nil
}

// prepareGateway (prepare, phase 2) makes each target disk writable by a
// gateway and records, per disk, where the agent sends it.
func prepareGateway(ctx context.Context, r *run) (outcome, error) {
	disks := r.mig.Disks
	for i, d := range disks {
		ep, err := r.drv.PrepareGateway(ctx, d.TargetDiskID)
		if err != nil {
			return outcome{}, fmt.Errorf("prepare gateway for %s: %w", d.TargetDiskID, err)
		}
		disks[i].GatewayURL, disks[i].Fingerprint = ep.URL, ep.Fingerprint
	}
	if err := r.tx(ctx, func(tx *ent.Tx) error { return tx.Migration.UpdateOneID(r.mig.ID).SetDisks(disks).Exec(ctx) }); err != nil {
		return outcome{}, err
	}
	where := "the control plane's gateway"
	if len(disks) > 0 && disks[0].GatewayURL != "" {
		where = "gateway " + disks[0].GatewayURL
	}
	return next("disks writable through %s", where), nil
}

// startSync (prepare, phase 3) asks for the first pass and hands over to
// the sync step.
func startSync(ctx context.Context, r *run) (outcome, error) {
	mig := r.mig
	if mig.State == ferry.MigrationPreparing {
		failure, err := r.hooks(ctx, ferry.HookBeforeSync)
		if err != nil {
			return outcome{}, err
		}
		if failure != "" {
			return outcome{}, fail("%s", failure)
		}
	}
	now := r.l.Now().UTC()
	var syncStep *ent.Step
	err := r.tx(ctx, func(tx *ent.Tx) error {
		if mig.State == ferry.MigrationPreparing {
			if err := r.l.transition(ctx, tx.Client(), mig, ferry.MigrationInitialSync, func(u *ent.MigrationUpdateOne) {
				u.SetBytesDone(0).SetSyncPass(1).SetSyncRequestedAt(now).ClearCommandSentAt().SetLastError("")
			}); err != nil {
				return err
			}
		}
		var err error
		syncStep, err = ensureStep(ctx, tx.Client(), mig, KindSync)
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	if err := r.l.wake(ctx, syncStep.ID); err != nil {
		r.l.Log.WarnContext(ctx, "enqueue the sync step", "migration", mig.ID, "error", err)
	}
	return next("pass 1 requested from the host's agent"), nil
}

// ensureStep returns the migration's unfinished step of kind, creating one.
func ensureStep(ctx context.Context, c *ent.Client, mig *ent.Migration, kind string) (*ent.Step, error) {
	s, err := c.Step.Query().Where(step.MigrationID(mig.ID), step.Kind(kind), step.StatusIn(activeStatuses...)).First(ctx)
	if err == nil || !ent.IsNotFound(err) {
		return s, err
	}
	return c.Step.Create().SetTenantID(mig.TenantID).SetMigrationID(mig.ID).SetKind(kind).Save(ctx)
}
