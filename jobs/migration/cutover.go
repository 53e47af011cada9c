package migration

import (
	"context"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/recoverypoint"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
)

// needsApproval: the migration's settings ask for someone's consent
// before the cutover (settings.approval, e.g. {"role": "admin"}).
func needsApproval(r *run) bool {
	v, ok := r.mig.Settings["approval"]
	return ok && v != nil && v != false
}

// awaitApproval (cutover, phase 1, when the settings ask) waits until
// Approve records who consented.
func awaitApproval(ctx context.Context, r *run) (outcome, error) {
	if by, ok := r.step.Data["approved_by"].(string); ok && by != "" {
		return next("approved by %s", by), nil
	}
	if r.step.Data["waiting_since"] == nil {
		r.event(ctx, stepevent.LevelInfo, "approval", "waiting for approval (%v) before the cutover", r.mig.Settings["approval"])
		if err := r.setData(ctx, map[string]any{"waiting_since": r.l.Now().UTC().Format(time.RFC3339)}); err != nil {
			return outcome{}, err
		}
	}
	return wait(0, func(r *run) bool { by, _ := r.step.Data["approved_by"].(string); return by != "" }), nil
}

// requestFinalPass (cutover, phase 2) asks for the final delta: a new pass
// that starts after this moment (the source is quiesced for it: the agent's
// command says Final), and wakes the sync step to follow it.
func requestFinalPass(ctx context.Context, r *run) (outcome, error) {
	mig := r.mig
	if mig.State != ferry.MigrationCuttingOver {
		return done(string(step.StatusCanceled), "no cutover: the migration is %s", mig.State), nil
	}
	if finalPass(mig) {
		return next(""), nil // asked before a crash
	}
	if failure, err := r.hooks(ctx, ferry.HookBeforeCutover); err != nil || failure != "" {
		if err != nil {
			return outcome{}, err
		}
		return r.cutoverStopped(ctx, failure)
	}
	now := r.l.Now().UTC()
	err := r.tx(ctx, func(tx *ent.Tx) error {
		return tx.Migration.UpdateOneID(mig.ID).Where(migration.StateEQ(ferry.MigrationCuttingOver), migration.SyncPass(mig.SyncPass)).
			AddSyncPass(1).SetSyncRequestedAt(now).ClearCommandSentAt().SetBytesDone(0).Exec(ctx)
	})
	if err != nil {
		return outcome{}, err
	}
	if s, err := r.l.Client.Step.Query().Where(step.MigrationID(mig.ID), step.Kind(KindSync), step.StatusIn(activeStatuses...)).First(ctx); err == nil {
		if err := r.l.wake(ctx, s.ID); err != nil {
			r.l.Log.WarnContext(ctx, "wake the sync step", "migration", mig.ID, "error", err)
		}
	}
	return next("final pass %d requested", mig.SyncPass+1), nil
}

// finalPass reports whether the pass the migration asks for is the
// cutover's final delta: requested after the migration began cutting over.
func finalPass(mig *ent.Migration) bool {
	return mig.State == ferry.MigrationCuttingOver && mig.SyncRequestedAt != nil && mig.StateChangedAt != nil &&
		!mig.SyncRequestedAt.Before(*mig.StateChangedAt)
}

// awaitFinalPass (cutover, phase 3) waits for the final delta's recovery
// point, which the sync step records and then wakes this one.
func awaitFinalPass(ctx context.Context, r *run) (outcome, error) {
	switch {
	case r.mig.State != ferry.MigrationCuttingOver:
		return done(string(step.StatusCanceled), "no cutover: the migration is %s", r.mig.State), nil
	case !finalPass(r.mig):
		return goTo("final_pass", ""), nil
	case passRecorded(r.mig):
		return next("final pass %d recorded", r.mig.SyncPass), nil
	}
	return wait(time.Minute, func(r *run) bool { return passRecorded(r.mig) || r.mig.State != ferry.MigrationCuttingOver }), nil
}

// cutoverCreate (cutover, phase 3) launches the final recovery point as the
// live machine, recording the Launch first so that a crash finds it.
func cutoverCreate(ctx context.Context, r *run) (outcome, error) {
	if r.mig.State != ferry.MigrationCuttingOver {
		return done(string(step.StatusCanceled), "no cutover: the migration is %s", r.mig.State), nil
	}
	if r.step.LaunchID == nil {
		rp, err := r.l.Client.RecoveryPoint.Query().Where(recoverypoint.HasMigrationWith(migration.ID(r.mig.ID)),
			recoverypoint.CreatedAtGTE(*r.mig.SyncRequestedAt)).Order(ent.Desc(recoverypoint.FieldCreatedAt), ent.Desc(recoverypoint.FieldID)).First(ctx)
		if ent.IsNotFound(err) {
			return outcome{}, fail("cutover: the final recovery point is missing")
		}
		if err != nil {
			return outcome{}, err
		}
		var l *ent.Launch
		err = r.tx(ctx, func(tx *ent.Tx) error {
			var err error
			c := tx.Launch.Create().SetTenantID(r.mig.TenantID).SetMigrationID(r.mig.ID).SetRecoveryPointID(rp.ID).SetKind(launch.KindCutover)
			if at := quiescedAt(r.mig); !at.IsZero() {
				c.SetQuiescedAt(at)
			}
			l, err = c.Save(ctx)
			if err != nil {
				return err
			}
			return tx.Step.UpdateOneID(r.step.ID).SetLaunchID(l.ID).Exec(ctx)
		})
		if err != nil {
			return outcome{}, err
		}
		r.step.LaunchID = &l.ID
	}
	l, err := r.launchRow(ctx)
	if err != nil {
		return outcome{}, err
	}
	if l.Status == launch.StatusFailed || l.Status == launch.StatusTerminated {
		return done(string(step.StatusFailed), "cutover launch %d %s: %s", l.ID, l.Status, l.Message), nil
	}
	m, err := r.createMachine(ctx, l, cloud.LaunchCutover)
	if unlaunchable(err) {
		return r.cutoverFailed(ctx, l, err.Error())
	}
	if err != nil {
		return outcome{}, err
	}
	return next("live machine %s made with %d disks from the final recovery point %d%s", m.ID, len(m.Disks), l.Edges.RecoveryPoint.ID, sizeNote(m.Shape)), nil
}

// quiescedAt is when the source stopped changing for the cutover, as the
// control plane knows it: the final pass's command was handed to the agent,
// which quiesces the source (SyncCommand.Quiesce) before it reads a block.
// (A command redelivered because nothing of the pass arrived moves it to
// the delivery that worked.) Downtime runs from here to the target
// healthy; it includes the agent's quiesce, so it errs long, not short.
func quiescedAt(mig *ent.Migration) time.Time {
	if mig.CommandSentAt != nil && mig.SyncRequestedAt != nil && !mig.CommandSentAt.Before(*mig.SyncRequestedAt) {
		return *mig.CommandSentAt
	}
	return time.Time{}
}

// cutoverFailed undoes a cutover launch and says why: the source stays
// authoritative, and the migration returns to cutover_ready.
func (r *run) cutoverFailed(ctx context.Context, l *ent.Launch, msg string) (outcome, error) {
	l.Kind = launch.KindCutover
	if err := r.l.discardLaunch(ctx, r.drv, r.mig, l); err != nil {
		return outcome{}, err
	}
	err := r.tx(ctx, func(tx *ent.Tx) error {
		if err := tx.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusFailed).SetMessage(msg).SetFinishedAt(r.l.Now().UTC()).Exec(ctx); err != nil {
			return err
		}
		err := r.l.transition(ctx, tx.Client(), r.mig, ferry.MigrationCutoverReady, func(u *ent.MigrationUpdateOne) {
			u.SetLastError("cutover failed, the source is still authoritative: " + msg)
		})
		if ferry.ErrorCode(err) == ferry.ECONFLICT {
			return nil
		}
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	r.l.Log.WarnContext(ctx, "cutover failed; back to cutover_ready", "migration", r.mig.ID, "error", msg)
	return done(string(step.StatusFailed), "cutover failed, back to cutover_ready: %s", msg), nil
}

// cutoverVerify (cutover, phase 5): a machine whose checks failed is
// rolled back.
func cutoverVerify(ctx context.Context, r *run) (outcome, error) {
	l, err := r.launchRow(ctx)
	if err != nil {
		return outcome{}, err
	}
	switch {
	case l.Status == launch.StatusFailed || l.Status == launch.StatusTerminated:
		return done(string(step.StatusFailed), "cutover launch %d %s: %s", l.ID, l.Status, l.Message), nil
	case !checksPassed(l.Checks):
		return r.cutoverFailed(ctx, l, "checks failed: "+failedChecks(l.Checks))
	}
	if failure, err := r.hooks(ctx, ferry.HookAfterLaunch); err != nil || failure != "" {
		if err != nil {
			return outcome{}, err
		}
		return r.cutoverFailed(ctx, l, failure)
	}
	return next("all checks of machine %s passed", l.InstanceID), nil
}

// cutoverFinalize (cutover, phase 6) makes the launch live: the test copies
// have served their purpose, the migration is cut over. Rolled back
// meanwhile, the machine made live goes too.
func cutoverFinalize(ctx context.Context, r *run) (outcome, error) {
	l, err := r.launchRow(ctx)
	if err != nil {
		return outcome{}, err
	}
	if l.Status == launch.StatusSucceeded {
		return next(""), nil // finalized before a crash
	}
	// after_cutover runs with the machine up and before it is declared
	// live, so that a must-succeed failure still undoes the cutover.
	if failure, err := r.hooks(ctx, ferry.HookAfterCutover); err != nil || failure != "" {
		if err != nil {
			return outcome{}, err
		}
		return r.cutoverFailed(ctx, l, failure)
	}
	tests, err := r.l.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(r.mig.ID)), launch.KindEQ(launch.KindTest),
		launch.StatusNEQ(launch.StatusTerminated)).All(ctx)
	if err != nil {
		return outcome{}, err
	}
	for _, t := range tests {
		if err := r.l.discardLaunch(ctx, r.drv, r.mig, t); err != nil {
			return outcome{}, err
		}
	}
	moved := false
	err = r.tx(ctx, func(tx *ent.Tx) error {
		if err := tx.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusSucceeded).SetMessage("live: " + passedMessage(l.Checks)).SetFinishedAt(r.l.Now().UTC()).Exec(ctx); err != nil {
			return err
		}
		err := r.l.transition(ctx, tx.Client(), r.mig, ferry.MigrationCutOver, func(u *ent.MigrationUpdateOne) { u.SetLastError("") })
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
		r.l.Log.WarnContext(ctx, "cutover overtaken; discarding its launch", "migration", r.mig.ID, "state", r.mig.State)
		if err := r.l.discardLaunch(ctx, r.drv, r.mig, l); err != nil {
			return outcome{}, err
		}
		return done(string(step.StatusCanceled), "the migration moved on to %s; the launched machine is rolled back", r.mig.State), nil
	}
	r.l.Log.InfoContext(ctx, "cut over", "migration", r.mig.ID, "machine", l.InstanceID)
	return next("cut over: machine %s is live", l.InstanceID), nil
}
