package migration

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
)

// HookRunner runs a migration's pre- and post-step hooks (issue 13; jobs/hook
// implements it). The steps call it at each ferry.HookPoint; a nil
// Lifecycle.Hooks runs none.
type HookRunner interface {
	// Run runs the webhooks of point for mig, each within its timeout,
	// logging every outcome through log. It returns an error only when a
	// must-succeed hook failed: the host's cutover stops and is undone.
	Run(ctx context.Context, point ferry.HookPoint, mig *ent.Migration, log func(level, msg string)) error
	// Scripts are the agent scripts of point for mig, which go out with
	// the sync command (before_sync: every pass; before_cutover: the final
	// pass) and run on the source through the agent's command runner.
	Scripts(ctx context.Context, point ferry.HookPoint, mig *ent.Migration) ([]engine.Hook, error)
}

// hooks runs point's hooks once per step: the step's data remembers that
// they ran, so a phase that runs again after a crash does not repeat them.
// It returns the must-succeed failure ("" when none).
func (r *run) hooks(ctx context.Context, point ferry.HookPoint) (string, error) {
	if r.l.Hooks == nil {
		return "", nil
	}
	key := "hooks_" + string(point)
	if v, _ := r.step.Data[key].(string); v == "ok" {
		return "", nil
	}
	ph := r.step.Phase
	failure := r.l.Hooks.Run(ctx, point, r.mig, func(level, msg string) {
		lv := stepevent.LevelInfo
		switch level {
		case "warn":
			lv = stepevent.LevelWarn
		case "error":
			lv = stepevent.LevelError
		}
		r.event(ctx, lv, ph, "%s", msg)
	})
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if failure != nil {
		return failure.Error(), nil
	}
	return "", r.setData(ctx, map[string]any{key: "ok"})
}

// cutoverStopped ends a cutover whose must-succeed hook failed before a
// machine was launched: the migration returns to cutover_ready with the
// reason, the source stays authoritative.
func (r *run) cutoverStopped(ctx context.Context, msg string) (outcome, error) {
	err := r.tx(ctx, func(tx *ent.Tx) error {
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
	return done(string(step.StatusFailed), "cutover failed, back to cutover_ready: %s", msg), nil
}

// syncEvery is the migration's RPO: settings.rpoSeconds (1 min .. 168 h)
// when given, else the Lifecycle's.
func (l *Lifecycle) syncEvery(mig *ent.Migration) time.Duration {
	if v, ok := mig.Settings["rpoSeconds"].(float64); ok && v >= 60 && v <= 168*3600 {
		return time.Duration(v) * time.Second
	}
	return l.SyncEvery
}

// scripts are the agent scripts for a pass of mig (nil without hooks).
func (l *Lifecycle) scripts(ctx context.Context, mig *ent.Migration, final bool) ([]engine.Hook, error) {
	if l.Hooks == nil {
		return nil, nil
	}
	point := ferry.HookBeforeSync
	if final {
		point = ferry.HookBeforeCutover
	}
	hs, err := l.Hooks.Scripts(ctx, point, mig)
	if err != nil {
		return nil, fmt.Errorf("hooks of migration %d: %w", mig.ID, err)
	}
	return hs, nil
}

var _ ferry.MigrationSettingsService = (*Lifecycle)(nil)

// SetMigrationSettings implements ferry.MigrationSettingsService: the
// migration's own RPO and retention, which its sync step reads at its next
// decision (it is woken, so a shorter RPO takes effect at once).
func (l *Lifecycle) SetMigrationSettings(ctx context.Context, migrationID int, s ferry.MigrationSettings) error {
	l.init()
	if s.RPO != nil {
		if err := ferry.CheckRPO(*s.RPO); err != nil {
			return err
		}
	}
	if err := ferry.CheckRetention(s.KeepLast, s.KeepDaily); err != nil {
		return err
	}
	return l.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		m, err := load(ctx, c, migrationID, "")
		if err != nil {
			return err
		}
		if m.State.Finished() || m.State == ferry.MigrationCutOver {
			return ferry.Errorf(ferry.ECONFLICT, "migration %d is %s: it syncs no more", m.ID, m.State)
		}
		settings := map[string]any{}
		for k, v := range m.Settings {
			settings[k] = v
		}
		if s.RPO != nil {
			delete(settings, "rpoSeconds")
			if *s.RPO > 0 {
				settings["rpoSeconds"] = int(*s.RPO / time.Second)
			}
		}
		if s.KeepLast != nil || s.KeepDaily != nil {
			ret := map[string]any{}
			if old, ok := settings["retention"].(map[string]any); ok {
				for k, v := range old {
					ret[k] = v
				}
			}
			if s.KeepLast != nil {
				ret["keepLast"] = *s.KeepLast
			}
			if s.KeepDaily != nil {
				ret["keepDaily"] = *s.KeepDaily
			}
			settings["retention"] = ret
		}
		if err := c.Migration.UpdateOneID(m.ID).SetSettings(settings).Exec(ctx); err != nil {
			return err
		}
		sync, err := c.Step.Query().Where(step.MigrationID(m.ID), step.Kind(KindSync), step.StatusIn(activeStatuses...)).First(ctx)
		if ent.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		l.afterCommit(ctx, func(ctx context.Context) error { return l.wake(ctx, sync.ID) })
		return nil
	})
}
