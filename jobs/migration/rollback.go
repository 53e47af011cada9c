package migration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
)

// drain (rollback, phase 1) waits until no other step of the migration is
// held: Rollback canceled them, and a holder stops at its next lease
// renewal (or its lease runs out). Only then is every machine there is to
// discard made.
func drain(ctx context.Context, r *run) (outcome, error) {
	now := r.l.Now().UTC()
	held, err := r.l.Client.Step.Query().Where(step.MigrationID(r.mig.ID), step.IDNEQ(r.step.ID), step.LeaseOwnerNEQ(""), step.LeaseUntilGT(now)).All(ctx)
	if err != nil {
		return outcome{}, err
	}
	for _, s := range held {
		if !r.l.ownerDead(s.LeaseOwner) {
			return wait(time.Second, nil), nil
		}
	}
	return next(""), nil
}

// discardAll (rollback, phase 2) discards every launched machine of the
// migration: those its launches recorded and any other the cloud holds for
// it. The source was never touched and is authoritative again.
func discardAll(ctx context.Context, r *run) (outcome, error) {
	ls, err := r.l.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(r.mig.ID)), launch.StatusNEQ(launch.StatusTerminated)).All(ctx)
	if err != nil {
		return outcome{}, err
	}
	for _, l := range ls {
		if err := r.l.discardLaunch(ctx, r.drv, r.mig, l); err != nil {
			return outcome{}, err
		}
	}
	ms, err := r.drv.ListMachines(ctx, strconv.Itoa(r.mig.ID))
	if err != nil {
		return outcome{}, err
	}
	stray := 0
	for _, m := range ms {
		if !m.State.Active() {
			continue
		}
		if err := r.drv.Rollback(ctx, m.ID); err != nil && !errors.Is(err, cloud.ErrNotFound) {
			return outcome{}, fmt.Errorf("roll back machine %s: %w", m.ID, err)
		}
		stray++
	}
	if stray > 0 {
		return next("%d launches and %d unrecorded machines discarded", len(ls), stray), nil
	}
	return next("%d launches discarded", len(ls)), nil
}

// releaseGateways (rollback, phase 3): replication stops.
func releaseGateways(ctx context.Context, r *run) (outcome, error) {
	for _, d := range r.mig.Disks {
		if err := r.drv.ReleaseGateway(ctx, d.TargetDiskID); err != nil {
			return outcome{}, fmt.Errorf("release gateway of %s: %w", d.TargetDiskID, err)
		}
	}
	return next(""), nil
}

// finishRollback (rollback, phase 4).
func finishRollback(ctx context.Context, r *run) (outcome, error) {
	err := r.tx(ctx, func(tx *ent.Tx) error { return r.l.transition(ctx, tx.Client(), r.mig, ferry.MigrationRolledBack, nil) })
	if ferry.ErrorCode(err) == ferry.ECONFLICT && r.mig.State == ferry.MigrationRolledBack {
		err = nil
	}
	if err != nil {
		return outcome{}, err
	}
	r.l.Log.InfoContext(ctx, "rolled back", "migration", r.mig.ID)
	return next("rolled back: the source is authoritative"), nil
}
