package migration

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/throttle"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/recoverypoint"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
)

// The lifecycle service (ferry.MigrationService): each method checks the
// state machine and its inputs, writes the change and the step it calls for
// in one transaction (the caller's, when its context has one), and enqueues
// the step once that transaction has committed — so a task never sees the
// database before the change that asked for it, and a lost enqueue is
// found by the reconciler.

// maxStart bounds one Start.
const maxStart = 500

// Start implements ferry.MigrationService.
func (l *Lifecycle) Start(ctx context.Context, req ferry.MigrationStart) ([]int, error) {
	l.init()
	settings, err := startSettings(req)
	if err != nil {
		return nil, err
	}
	var ids []int
	var steps []*ent.Step
	err = l.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		if req.CloudAccountID != nil {
			ca, err := c.CloudAccount.Get(ctx, *req.CloudAccountID)
			if ent.IsNotFound(err) {
				return ferry.Errorf(ferry.ENOTFOUND, "cloud account %d not found", *req.CloudAccountID)
			}
			if err != nil {
				return err
			}
			if !l.Clouds.Has(string(ca.Provider)) {
				return ferry.Errorf(ferry.EINVALID, "cloud account %q uses provider %s, whose driver is not part of this build (providers here: %s)",
					ca.Name, ca.Provider, strings.Join(l.Clouds.Names(), ", "))
			}
			settings["driver"] = string(ca.Provider)
		}
		if l.Admit != nil {
			if err := l.Admit(ctx, c, distinct(req.HostIDs)); err != nil {
				return err
			}
		}
		seen := map[int]bool{}
		for _, id := range req.HostIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			s, err := l.startOne(ctx, c, id, req.CloudAccountID, settings)
			if err != nil {
				return err
			}
			ids, steps = append(ids, s.MigrationID), append(steps, s)
		}
		l.afterCommit(ctx, func(ctx context.Context) error {
			for _, s := range steps {
				if err := l.enqueue(ctx, s.Kind, s.ID, s.Generation, s.MigrationID, l.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		return nil
	})
	return ids, err
}

// startSettings checks a start's inputs and returns the migrations'
// settings.
func startSettings(req ferry.MigrationStart) (map[string]any, error) {
	if len(req.HostIDs) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "choose at least one host to migrate")
	}
	if len(req.HostIDs) > maxStart {
		return nil, ferry.Errorf(ferry.EINVALID, "start at most %d migrations at once, got %d hosts", maxStart, len(req.HostIDs))
	}
	settings := map[string]any{"driver": "local", "startedBy": req.StartedBy}
	if rl := strings.TrimSpace(req.RateLimit); rl != "" {
		rate, err := throttle.ParseRate(rl)
		if err != nil {
			return nil, ferry.Errorf(ferry.EINVALID, "rate limit: %v", err)
		}
		if rate == 0 {
			return nil, ferry.Errorf(ferry.EINVALID, "rate limit 0 would never send anything; leave it empty for no limit")
		}
		// Stored in the spelling every reader reads alike (the agent reads
		// it with ferry.ParseStoredRate).
		settings["rate"] = rate.String()
	}
	if q := req.Quiesce; q != nil {
		if err := checkQuiesce(q); err != nil {
			return nil, err
		}
		settings["quiesce"] = map[string]any{"mode": q.Mode, "services": anyList(q.Services), "mounts": anyList(q.Mounts)}
	}
	return settings, nil
}

var unitRE = regexp.MustCompile(`^[A-Za-z0-9@._:\\-]{1,200}$`)

// checkQuiesce says what is wrong with a quiesce plan, naming the item.
func checkQuiesce(q *ferry.QuiescePlan) error {
	switch q.Mode {
	case "services":
		if len(q.Services) == 0 {
			return ferry.Errorf(ferry.EINVALID, "quiesce mode services needs the systemd units to stop")
		}
		for i, u := range q.Services {
			if !unitRE.MatchString(u) {
				return ferry.Errorf(ferry.EINVALID, "quiesce service %d %q is not a systemd unit name", i+1, u)
			}
		}
	case "freeze":
		if len(q.Mounts) == 0 {
			return ferry.Errorf(ferry.EINVALID, "quiesce mode freeze needs the mount points to freeze")
		}
		for i, m := range q.Mounts {
			if !strings.HasPrefix(m, "/") || strings.ContainsAny(m, "\x00\n") || len(m) > 1000 {
				return ferry.Errorf(ferry.EINVALID, "quiesce mount %d %q is not an absolute path", i+1, m)
			}
		}
	case "shutdown":
	default:
		return ferry.Errorf(ferry.EINVALID, "quiesce mode %q: want services, freeze or shutdown", q.Mode)
	}
	if len(q.Services) > 50 || len(q.Mounts) > 50 {
		return ferry.Errorf(ferry.EINVALID, "quiesce at most 50 services and 50 mounts")
	}
	return nil
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// startOne creates the pending migration of one host and its prepare step.
func (l *Lifecycle) startOne(ctx context.Context, c *ent.Client, hostID int, account *int, settings map[string]any) (*ent.Step, error) {
	h, err := c.Host.Get(ctx, hostID)
	if ent.IsNotFound(err) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "host %d not found", hostID)
	}
	if err != nil {
		return nil, err
	}
	active, err := c.Migration.Query().Where(migration.HostID(hostID), migration.StateNotIn(ferry.MigrationRolledBack, ferry.MigrationFailed)).First(ctx)
	if err == nil {
		return nil, ferry.Errorf(ferry.ECONFLICT, "host %s already has migration %d in state %s; roll it back (or let it fail) before starting another", h.Name, active.ID, active.State)
	}
	if !ent.IsNotFound(err) {
		return nil, err
	}
	cr := c.Migration.Create().SetTenantID(h.TenantID).SetHostID(hostID).SetStateChangedAt(l.Now().UTC()).SetSettings(settings)
	if account != nil {
		cr.SetCloudAccountID(*account)
	}
	m, err := cr.Save(ctx)
	if err != nil {
		return nil, err
	}
	return c.Step.Create().SetTenantID(m.TenantID).SetMigrationID(m.ID).SetKind(KindPrepare).Save(ctx)
}

// load returns the migration and checks that the state allows action.
func load(ctx context.Context, c *ent.Client, id int, action ferry.MigrationAction) (*ent.Migration, error) {
	m, err := c.Migration.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "migration %d not found", id)
	}
	if err != nil {
		return nil, err
	}
	if action != "" {
		if err := m.State.Allows(action); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// TestLaunch implements ferry.MigrationService.
func (l *Lifecycle) TestLaunch(ctx context.Context, migrationID int, recoveryPointID *int) (int, error) {
	l.init()
	var launchID int
	err := l.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		m, err := load(ctx, c, migrationID, ferry.ActionTestLaunch)
		if err != nil {
			return err
		}
		q := c.RecoveryPoint.Query().Where(recoverypoint.HasMigrationWith(migration.ID(m.ID)))
		if recoveryPointID != nil {
			q = q.Where(recoverypoint.ID(*recoveryPointID))
		}
		rp, err := q.Order(ent.Desc(recoverypoint.FieldCreatedAt), ent.Desc(recoverypoint.FieldID)).First(ctx)
		if ent.IsNotFound(err) {
			if recoveryPointID != nil {
				return ferry.Errorf(ferry.ENOTFOUND, "recovery point %d is not one of migration %d's", *recoveryPointID, m.ID)
			}
			return ferry.Errorf(ferry.ECONFLICT, "migration %d has no recovery point yet: wait for a sync pass to complete", m.ID)
		}
		if err != nil {
			return err
		}
		busy, err := c.Launch.Query().Where(launch.HasMigrationWith(migration.ID(m.ID)), launch.StatusIn(launch.StatusPending, launch.StatusRunning)).Exist(ctx)
		if err != nil {
			return err
		}
		if busy {
			return ferry.Errorf(ferry.ECONFLICT, "migration %d already has a launch in progress; wait for it to finish", m.ID)
		}
		ln, err := c.Launch.Create().SetTenantID(m.TenantID).SetMigrationID(m.ID).SetRecoveryPointID(rp.ID).SetKind(launch.KindTest).Save(ctx)
		if err != nil {
			return err
		}
		if err := l.transition(ctx, c, m, ferry.MigrationTestLaunched, nil); err != nil {
			return err
		}
		s, err := c.Step.Create().SetTenantID(m.TenantID).SetMigrationID(m.ID).SetKind(KindTestLaunch).SetLaunchID(ln.ID).Save(ctx)
		if err != nil {
			return err
		}
		launchID = ln.ID
		l.afterCommit(ctx, func(ctx context.Context) error { return l.enqueue(ctx, s.Kind, s.ID, s.Generation, m.ID, l.Now()) })
		return nil
	})
	return launchID, err
}

// RequestCutover implements ferry.MigrationService: the migration is
// cutting over, and its cutover step asks for the final delta (after an
// approval, when the settings want one) and launches its recovery point.
func (l *Lifecycle) RequestCutover(ctx context.Context, migrationID int) error {
	l.init()
	return l.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		m, err := load(ctx, c, migrationID, ferry.ActionCutover)
		if err != nil {
			return err
		}
		if err := l.transition(ctx, c, m, ferry.MigrationCuttingOver, func(u *ent.MigrationUpdateOne) { u.SetLastError("") }); err != nil {
			return err
		}
		cut, err := ensureStep(ctx, c, m, KindCutover)
		if err != nil {
			return err
		}
		l.afterCommit(ctx, func(ctx context.Context) error {
			return l.enqueue(ctx, cut.Kind, cut.ID, cut.Generation, m.ID, l.Now())
		})
		return nil
	})
}

// Rollback implements ferry.MigrationService: every other unfinished step
// of the migration is canceled (a worker holding one stops at its next
// lease renewal), and the rollback step discards what was launched once
// they have.
func (l *Lifecycle) Rollback(ctx context.Context, migrationID int) error {
	l.init()
	return l.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		m, err := load(ctx, c, migrationID, ferry.ActionRollback)
		if err != nil {
			return err
		}
		if err := l.transition(ctx, c, m, ferry.MigrationRollingBack, nil); err != nil {
			return err
		}
		if err := c.Step.Update().Where(step.MigrationID(m.ID), step.StatusIn(activeStatuses...), step.KindNEQ(KindRollback)).
			SetStatus(step.StatusCanceled).SetFinishedAt(l.Now().UTC()).ClearWakeAt().Exec(ctx); err != nil {
			return err
		}
		rb, err := ensureStep(ctx, c, m, KindRollback)
		if err != nil {
			return err
		}
		l.afterCommit(ctx, func(ctx context.Context) error { return l.enqueue(ctx, rb.Kind, rb.ID, rb.Generation, m.ID, l.Now()) })
		return nil
	})
}

// Approve implements ferry.MigrationService.
func (l *Lifecycle) Approve(ctx context.Context, migrationID int, approver string) error {
	l.init()
	if strings.TrimSpace(approver) == "" {
		return ferry.Errorf(ferry.EINVALID, "an approval needs the approver's name")
	}
	return l.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		m, err := load(ctx, c, migrationID, "")
		if err != nil {
			return err
		}
		s, err := c.Step.Query().Where(step.MigrationID(m.ID), step.Kind(KindCutover), step.Phase("approval"), step.StatusIn(activeStatuses...)).First(ctx)
		if ent.IsNotFound(err) {
			return ferry.Errorf(ferry.ECONFLICT, "migration %d has no step waiting for an approval (state %s)", m.ID, m.State)
		}
		if err != nil {
			return err
		}
		data := map[string]any{}
		for k, v := range s.Data {
			data[k] = v
		}
		data["approved_by"], data["approved_at"] = approver, l.Now().UTC().Format("2006-01-02T15:04:05Z")
		if err := c.Step.UpdateOneID(s.ID).SetData(data).Exec(ctx); err != nil {
			return err
		}
		if err := c.StepEvent.Create().SetTenantID(m.TenantID).SetStepID(s.ID).SetPhase("approval").SetLevel(stepevent.LevelInfo).
			SetMessage(fmt.Sprintf("approved by %s", approver)).SetCreatedAt(l.Now().UTC()).Exec(ctx); err != nil {
			return err
		}
		l.afterCommit(ctx, func(ctx context.Context) error { return l.wake(ctx, s.ID) })
		return nil
	})
}

// inTx runs fn in the caller's transaction (the GraphQL mutation's), or
// in one of its own.
func (l *Lifecycle) inTx(ctx context.Context, fn func(ctx context.Context, c *ent.Client) error) error {
	if tx := ent.TxFromContext(ctx); tx != nil {
		return fn(ctx, tx.Client())
	}
	tx, err := l.Client.Tx(ctx)
	if err != nil {
		return err
	}
	ctx = ent.NewTxContext(ctx, tx)
	if err := fn(ent.NewContext(ctx, tx.Client()), tx.Client()); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// afterCommit runs fn once the transaction in ctx has committed. A failed
// enqueue is logged: the reconciler re-derives the work from the database.
func (l *Lifecycle) afterCommit(ctx context.Context, fn func(context.Context) error) {
	run := func() {
		if err := fn(context.WithoutCancel(ctx)); err != nil {
			l.Log.ErrorContext(ctx, "enqueue after commit", "error", err)
		}
	}
	tx := ent.TxFromContext(ctx)
	if tx == nil {
		run()
		return
	}
	tx.OnCommit(func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			err := next.Commit(ctx, tx)
			if err == nil {
				run()
			}
			return err
		})
	})
}

// distinct is ids without repeats, in first-seen order.
func distinct(ids []int) []int {
	seen := make(map[int]bool, len(ids))
	out := make([]int, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
