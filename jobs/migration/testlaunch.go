package migration

import (
	"context"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
)

// testCreate (test launch, phase 1) makes the machine of the chosen
// recovery point; the source and its replication are untouched.
func testCreate(ctx context.Context, r *run) (outcome, error) {
	l, err := r.launchRow(ctx)
	if err != nil {
		return outcome{}, err
	}
	switch l.Status {
	case launch.StatusFailed:
		return done(string(step.StatusFailed), "launch %d failed: %s", l.ID, l.Message), nil
	case launch.StatusSucceeded, launch.StatusTerminated:
		return done(string(step.StatusCanceled), "launch %d is %s already", l.ID, l.Status), nil
	}
	if r.mig.State != ferry.MigrationTestLaunched {
		err := r.tx(ctx, func(tx *ent.Tx) error {
			return tx.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusTerminated).SetMessage("not launched: the migration moved to " + string(r.mig.State)).
				SetFinishedAt(r.l.Now().UTC()).Exec(ctx)
		})
		if err != nil {
			return outcome{}, err
		}
		return done(string(step.StatusCanceled), "not launched: the migration is %s", r.mig.State), nil
	}
	m, err := r.createMachine(ctx, l, cloud.LaunchTest)
	if unlaunchable(err) {
		return r.testFailed(ctx, l, err.Error())
	}
	if err != nil {
		return outcome{}, err
	}
	return next("machine %s made with %d disks from recovery point %d%s", m.ID, len(m.Disks), l.Edges.RecoveryPoint.ID, sizeNote(m.Shape)), nil
}

// testFailed ends a test launch that could not be made: the launch failed,
// the migration keeps syncing and says why.
func (r *run) testFailed(ctx context.Context, l *ent.Launch, msg string) (outcome, error) {
	err := r.tx(ctx, func(tx *ent.Tx) error {
		if err := tx.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusFailed).SetMessage(msg).SetFinishedAt(r.l.Now().UTC()).Exec(ctx); err != nil {
			return err
		}
		err := r.l.transition(ctx, tx.Client(), r.mig, ferry.MigrationSyncing, func(u *ent.MigrationUpdateOne) { u.SetLastError("test launch failed: " + msg) })
		if ferry.ErrorCode(err) == ferry.ECONFLICT {
			return nil
		}
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	return done(string(step.StatusFailed), "test launch failed: %s", msg), nil
}

// testVerify (test launch, phase 3) decides on the checks: passed makes
// the migration cutover_ready, failed sends it back to syncing with the
// reason. A migration that moved on meanwhile gets the machine discarded.
func testVerify(ctx context.Context, r *run) (outcome, error) {
	l, err := r.launchRow(ctx)
	if err != nil {
		return outcome{}, err
	}
	if l.Status == launch.StatusSucceeded || l.Status == launch.StatusFailed {
		return next(""), nil // decided before a crash
	}
	passed := checksPassed(l.Checks)
	status, to, msg, lastErr := launch.StatusSucceeded, ferry.MigrationCutoverReady, passedMessage(l.Checks), ""
	if !passed {
		status, to, msg = launch.StatusFailed, ferry.MigrationSyncing, "checks failed: "+failedChecks(l.Checks)
		lastErr = "test launch " + msg
	}
	moved := false
	err = r.tx(ctx, func(tx *ent.Tx) error {
		if err := tx.Launch.UpdateOneID(l.ID).SetStatus(status).SetMessage(msg).SetFinishedAt(r.l.Now().UTC()).Exec(ctx); err != nil {
			return err
		}
		err := r.l.transition(ctx, tx.Client(), r.mig, to, func(u *ent.MigrationUpdateOne) { u.SetLastError(lastErr) })
		if ferry.ErrorCode(err) == ferry.ECONFLICT {
			moved = true
			return nil
		}
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	if moved {
		l.Status = status
		if err := r.l.discardLaunch(ctx, r.drv, r.mig, l); err != nil {
			return outcome{}, err
		}
		return done(string(step.StatusCanceled), "the migration moved on to %s during the launch; its machine is discarded", r.mig.State), nil
	}
	r.l.Log.InfoContext(ctx, "test launch finished", "migration", r.mig.ID, "launch", l.ID, "passed", passed, "machine", l.InstanceID)
	return next("test launch %d: %s", l.ID, msg), nil
}

// supersede (test launch, phase 4) discards the older test copies: this
// one replaces them.
func supersede(ctx context.Context, r *run) (outcome, error) {
	old, err := r.l.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(r.mig.ID)), launch.KindEQ(launch.KindTest),
		launch.IDNEQ(*r.step.LaunchID), launch.StatusIn(launch.StatusSucceeded, launch.StatusFailed, launch.StatusRunning)).All(ctx)
	if err != nil {
		return outcome{}, err
	}
	for _, o := range old {
		if err := r.l.discardLaunch(ctx, r.drv, r.mig, o); err != nil {
			return outcome{}, err
		}
	}
	if len(old) == 0 {
		return next(""), nil
	}
	return next("%d older test launches discarded", len(old)), nil
}
