package migration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
	"github.com/ferry-migrate/ferry/internal/telemetry"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// run is one worker's hold on a step: from the claim until it parks,
// finishes or loses the lease.
type run struct {
	l       *Lifecycle
	step    *ent.Step
	mig     *ent.Migration // re-read before every phase
	drv     cloud.Driver
	owner   string
	resumed bool // the step was running under a worker that stopped
}

// errLeaseLost: another worker holds the step now (ours ran out, or the step
// was canceled); nothing more may be written for it.
var errLeaseLost = errors.New("the step's lease is no longer ours")

// permanent marks an error no retry can fix: the step fails and so does the
// migration, with the message as the reason the user reads.
type permanent struct{ msg string }

func (p *permanent) Error() string { return p.msg }

func fail(format string, args ...any) error { return &permanent{fmt.Sprintf(format, args...)} }

// maxTransitions bounds the phases one task runs before it parks the step
// (a guard against a step that goes round without waiting).
const maxTransitions = 64

// handle is every step task's handler: it claims the step named by the
// payload if the generation is current and nobody holds a live lease on it,
// runs phases from the persisted one until the step parks or finishes, and
// releases the lease.
func (l *Lifecycle) handle(ctx context.Context, t *asynq.Task) error {
	l.init()
	var p StepPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.StepID == 0 {
		return fmt.Errorf("%s payload %q: %w", t.Type(), t.Payload(), asynq.SkipRetry)
	}
	sys := viewer.SystemContext(ctx)
	st, err := l.Client.Step.Get(sys, p.StepID)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Generation != p.Generation || finished(st.Status) {
		return nil // a newer task exists, or nothing is left to do
	}
	it := itineraries[st.Kind]
	if it == nil {
		return fmt.Errorf("step %d: unknown kind %q: %w", st.ID, st.Kind, asynq.SkipRetry)
	}
	mig, err := l.Client.Migration.Get(sys, st.MigrationID)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	tctx := viewer.TenantContext(ctx, mig.TenantID)
	drv, err := l.driver(tctx, mig)
	if err != nil {
		// Not claimed: a process that can open the driver takes it.
		return fmt.Errorf("step %d of migration %d: %w", st.ID, mig.ID, err)
	}
	taskID, _ := asynq.GetTaskID(ctx)
	owner := l.owner + "/" + taskID
	claimed, err := l.claim(sys, st, owner)
	if err != nil {
		return err
	}
	if !claimed {
		l.Log.InfoContext(ctx, "step held by another worker (or moved on); task dropped", "step", st.ID, "kind", st.Kind, "task", taskID)
		return nil
	}
	r := &run{l: l, step: st, mig: mig, drv: drv, owner: owner, resumed: st.Status == step.StatusRunning}
	// A takeover lands in the step's log with the holder it replaced and
	// when that holder's lease ran out. Every other claim found the step
	// released (the compare-and-set requires the holder read, here none), so
	// the takeovers are the only moments two workers could overlap: the
	// any-worker test reads them back to prove each came after the lease.
	if st.LeaseOwner != "" && st.LeaseUntil != nil {
		r.event(sys, stepevent.LevelWarn, st.Phase, "%s%s at generation %d; took over from %s, whose lease ran out at %s",
			ClaimPrefix, owner, st.Generation, st.LeaseOwner, st.LeaseUntil.UTC().Format(time.RFC3339Nano))
	}
	rctx, cancel := context.WithCancel(tctx)
	defer cancel()
	go l.renew(rctx, cancel, st.ID, owner)
	r.drive(rctx, it)
	cancel()
	// Whatever happened, the lease is not held past the handler: a worker
	// that gave up (lease lost, shutting down) lets the next one in at once.
	_, _ = l.Client.Step.Update().Where(step.ID(st.ID), step.LeaseOwner(owner)).SetLeaseOwner("").ClearLeaseUntil().Save(sys)
	return nil
}

func finished(s step.Status) bool {
	return s == step.StatusSucceeded || s == step.StatusFailed || s == step.StatusCanceled
}

// ClaimPrefix starts the step event a worker writes when it takes a step
// over from a holder whose lease ran out: "claimed by OWNER at generation
// G; took over from OWNER, whose lease ran out at RFC3339".
const ClaimPrefix = "claimed by "

// claim takes the step's lease by compare-and-set: only if the step is still
// at the generation read, unfinished, and nobody holds a live lease. The
// holder read must still be the one in the row, so the claim's log names
// exactly the holder it replaced.
func (l *Lifecycle) claim(ctx context.Context, st *ent.Step, owner string) (bool, error) {
	now := l.Now().UTC()
	n, err := l.Client.Step.Update().
		Where(step.ID(st.ID), step.Generation(st.Generation), step.StatusIn(step.StatusPending, step.StatusRunning, step.StatusWaiting),
			step.LeaseOwner(st.LeaseOwner), step.Or(step.LeaseUntilIsNil(), step.LeaseUntilLT(now))).
		SetLeaseOwner(owner).SetLeaseUntil(now.Add(l.Lease)).SetStatus(step.StatusRunning).ClearWakeAt().Save(ctx)
	if err != nil {
		return false, fmt.Errorf("claim step %d: %w", st.ID, err)
	}
	return n == 1, nil
}

// renew extends the lease every Lease/6 while the step runs; when the row
// says the lease is gone (canceled, or taken after ours ran out), it
// cancels the run.
func (l *Lifecycle) renew(ctx context.Context, cancel context.CancelFunc, id int, owner string) {
	t := time.NewTicker(max(l.Lease/6, 10*time.Millisecond))
	defer t.Stop()
	sys := viewer.SystemContext(context.WithoutCancel(ctx))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := l.Client.Step.Update().Where(step.ID(id), step.LeaseOwner(owner), step.StatusEQ(step.StatusRunning)).
			SetLeaseUntil(l.Now().UTC().Add(l.Lease)).Save(sys)
		if err != nil {
			l.Log.WarnContext(ctx, "renew step lease", "step", id, "error", err)
			continue
		}
		if n == 0 {
			l.Log.WarnContext(ctx, "step lease lost; stopping", "step", id)
			cancel()
			return
		}
	}
}

// drive runs phases until the step parks or finishes.
func (r *run) drive(ctx context.Context, it *itinerary) {
	ph, ok := it.start(r)
	if !ok {
		r.failStep(ctx, fmt.Sprintf("step %d (%s) is in phase %q, which its itinerary does not have", r.step.ID, r.step.Kind, r.step.Phase))
		return
	}
	if r.resumed {
		r.event(ctx, stepevent.LevelWarn, ph.name, "resumed in phase %s: the worker that held the step stopped", ph.name)
	}
	for range maxTransitions {
		mig, err := r.l.Client.Migration.Get(ctx, r.mig.ID)
		if err == nil {
			r.mig = mig
		}
		if err == nil && ph.name != r.step.Phase {
			err = r.setPhase(ctx, ph.name)
			if err == nil && !ph.quiet {
				r.event(ctx, stepevent.LevelInfo, ph.name, "phase %s started", ph.name)
			}
		}
		var out outcome
		if err == nil {
			if r.l.BeforePhase != nil {
				r.l.BeforePhase(ctx, r.step.Kind, ph.name, r.step.ID)
			}
			// Every request the provider makes to its cloud lands in the
			// step's log with the cloud's request id; every phase is a span.
			name := ph.name
			pctx := cloud.WithCallLog(ctx, func(c cloud.APICall) {
				lvl := stepevent.LevelInfo
				if c.Code != "" {
					lvl = stepevent.LevelWarn
				}
				r.event(ctx, lvl, name, "%s", c.String())
			})
			pctx, span := telemetry.Start(pctx, "migration."+r.step.Kind+"."+ph.name,
				attribute.Int("ferry.migration_id", r.mig.ID), attribute.Int("ferry.step_id", r.step.ID))
			out, err = ph.do(pctx, r)
			telemetry.End(span, err)
		}
		if err != nil {
			r.failed(ctx, ph, err)
			return
		}
		if out.msg != "" {
			r.event(ctx, stepevent.LevelInfo, ph.name, "%s", out.msg)
		}
		switch out.kind {
		case outNext:
			nxt, ok := it.after(it.index(ph.name), r)
			if !ok {
				r.finish(ctx, step.StatusSucceeded, "")
				return
			}
			ph = nxt
		case outGoTo:
			ph = it.phases[it.index(out.phase)]
		case outWait:
			parked, err := r.park(ctx, out)
			if err != nil {
				r.failed(ctx, ph, err)
				return
			}
			if parked {
				return
			}
		case outDone:
			r.finish(ctx, step.Status(out.status), "")
			return
		}
	}
	r.park(ctx, wait(time.Second, nil))
}

// failed handles a phase's error: nothing when the run lost its lease or
// was stopped; the step and the migration fail on a permanent error; else
// the phase is retried after a backoff.
func (r *run) failed(ctx context.Context, ph phase, err error) {
	var pe *permanent
	switch {
	case errors.Is(err, errLeaseLost) || ctx.Err() != nil:
		r.l.Log.InfoContext(ctx, "step stopped", "step", r.step.ID, "phase", ph.name, "reason", err)
	case errors.As(err, &pe):
		r.failStep(ctx, pe.msg)
	default:
		r.retry(ctx, ph, err)
	}
}

// tx runs fn in a transaction that first proves this worker still holds
// the step (and renews its lease), so no write of a worker that lost the
// step lands: the fence against a second worker on the same step.
func (r *run) tx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := r.l.Client.Tx(ctx)
	if err != nil {
		return err
	}
	n, err := tx.Step.Update().Where(step.ID(r.step.ID), step.LeaseOwner(r.owner), step.StatusEQ(step.StatusRunning)).
		SetLeaseUntil(r.l.Now().UTC().Add(r.l.Lease)).Save(ctx)
	if err == nil && n == 0 {
		err = errLeaseLost
	}
	if err == nil {
		err = fn(tx)
	}
	if err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (r *run) setPhase(ctx context.Context, name string) error {
	err := r.tx(ctx, func(tx *ent.Tx) error {
		return tx.Step.UpdateOneID(r.step.ID).SetPhase(name).SetAttempts(0).SetLastError("").Exec(ctx)
	})
	if err == nil {
		r.step.Phase, r.step.Attempts = name, 0
	}
	return err
}

// setData merges values into the step's data (phase-local state that must
// survive a crash: a machine id, an approval).
func (r *run) setData(ctx context.Context, kv map[string]any) error {
	data := map[string]any{}
	for k, v := range r.step.Data {
		data[k] = v
	}
	for k, v := range kv {
		data[k] = v
	}
	if err := r.tx(ctx, func(tx *ent.Tx) error { return tx.Step.UpdateOneID(r.step.ID).SetData(data).Exec(ctx) }); err != nil {
		return err
	}
	r.step.Data = data
	return nil
}

// park puts the step to sleep in its phase until out.after has passed (or
// until woken), unless out.recheck, asked inside the transaction, says to
// go on. It returns whether it parked.
func (r *run) park(ctx context.Context, out outcome) (bool, error) {
	now := r.l.Now().UTC()
	gen := r.step.Generation + 1
	var wake *time.Time
	if out.after > 0 {
		w := now.Add(out.after)
		wake = &w
	}
	goOn := false
	err := r.tx(ctx, func(tx *ent.Tx) error {
		if out.recheck != nil {
			mig, err := tx.Migration.Get(ctx, r.mig.ID)
			if err != nil {
				return err
			}
			if r.mig = mig; out.recheck(r) {
				goOn = true
				return nil
			}
		}
		return tx.Step.UpdateOneID(r.step.ID).SetStatus(step.StatusWaiting).SetNillableWakeAt(wake).SetGeneration(gen).
			SetLeaseOwner("").ClearLeaseUntil().Exec(ctx)
	})
	if err != nil || goOn {
		return false, err
	}
	r.step.Generation = gen
	if wake != nil {
		if err := r.l.enqueue(context.WithoutCancel(ctx), r.step.Kind, r.step.ID, gen, r.mig.ID, *wake); err != nil {
			// The row says when; the reconciler enqueues it if this was lost.
			r.l.Log.WarnContext(ctx, "enqueue parked step", "step", r.step.ID, "error", err)
		}
	}
	return true, nil
}

// retry parks the phase after a failure: a backoff doubling from 2 s to 5
// minutes; a throttled call waits what the cloud asked without counting; a
// quota waits a minute and tells the user on the migration.
func (r *run) retry(ctx context.Context, ph phase, cause error) {
	attempts := r.step.Attempts
	backoff := min(5*time.Minute, (2*time.Second)<<min(attempts, 10))
	switch {
	case errors.Is(cause, cloud.ErrThrottled):
		backoff = max(cloud.RetryAfter(cause), 2*time.Second)
	case errors.Is(cause, cloud.ErrQuota):
		backoff, attempts = time.Minute, attempts+1
	default:
		attempts++
	}
	msg := cause.Error()
	r.l.Log.WarnContext(ctx, "step phase failed; retrying", "migration", r.mig.ID, "step", r.step.ID, "kind", r.step.Kind, "phase", ph.name, "in", backoff, "error", msg)
	if r.step.LastError != msg {
		r.event(ctx, stepevent.LevelError, ph.name, "%s failed (retrying in %s): %s", ph.name, backoff.Round(time.Second), msg)
	}
	now := r.l.Now().UTC()
	wake, gen := now.Add(backoff), r.step.Generation+1
	err := r.tx(ctx, func(tx *ent.Tx) error {
		if err := tx.Step.UpdateOneID(r.step.ID).SetAttempts(attempts).SetLastError(msg).SetStatus(step.StatusWaiting).SetWakeAt(wake).
			SetGeneration(gen).SetLeaseOwner("").ClearLeaseUntil().Exec(ctx); err != nil {
			return err
		}
		return tx.Migration.UpdateOneID(r.mig.ID).SetLastError(msg).Exec(ctx)
	})
	if err != nil {
		r.l.Log.WarnContext(ctx, "park failed step", "step", r.step.ID, "error", err)
		return
	}
	if err := r.l.enqueue(context.WithoutCancel(ctx), r.step.Kind, r.step.ID, gen, r.mig.ID, wake); err != nil {
		r.l.Log.WarnContext(ctx, "enqueue retry", "step", r.step.ID, "error", err)
	}
}

// finish ends the step.
func (r *run) finish(ctx context.Context, status step.Status, msg string) {
	err := r.tx(ctx, func(tx *ent.Tx) error {
		return tx.Step.UpdateOneID(r.step.ID).SetStatus(status).SetFinishedAt(r.l.Now().UTC()).SetLeaseOwner("").ClearLeaseUntil().Exec(ctx)
	})
	if err != nil {
		r.l.Log.WarnContext(ctx, "finish step", "step", r.step.ID, "error", err)
		return
	}
	if msg != "" {
		r.event(ctx, stepevent.LevelInfo, r.step.Phase, "%s", msg)
	}
}

// failStep fails the step and its migration with reason.
func (r *run) failStep(ctx context.Context, reason string) {
	r.l.Log.ErrorContext(ctx, "migration failed", "migration", r.mig.ID, "step", r.step.ID, "kind", r.step.Kind, "phase", r.step.Phase, "reason", reason)
	err := r.tx(ctx, func(tx *ent.Tx) error {
		if err := tx.Step.UpdateOneID(r.step.ID).SetStatus(step.StatusFailed).SetLastError(reason).SetFinishedAt(r.l.Now().UTC()).
			SetLeaseOwner("").ClearLeaseUntil().Exec(ctx); err != nil {
			return err
		}
		err := r.l.transition(ctx, tx.Client(), r.mig, ferry.MigrationFailed, func(u *ent.MigrationUpdateOne) { u.SetFailureReason(reason) })
		if ferry.ErrorCode(err) == ferry.ECONFLICT {
			return nil // rolled back or failed already: the step's failure is recorded all the same
		}
		return err
	})
	if err != nil {
		r.l.Log.WarnContext(ctx, "record failure", "step", r.step.ID, "error", err)
	}
	r.event(ctx, stepevent.LevelError, r.step.Phase, "failed: %s", reason)
}

// event appends a line to the step's log.
func (r *run) event(ctx context.Context, level stepevent.Level, ph, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 4000 {
		msg = msg[:3990] + " …"
	}
	err := r.l.Client.StepEvent.Create().SetTenantID(r.mig.TenantID).SetStepID(r.step.ID).SetPhase(ph).SetLevel(level).
		SetMessage(msg).SetCreatedAt(r.l.Now().UTC()).Exec(viewer.SystemContext(context.WithoutCancel(ctx)))
	if err != nil {
		r.l.Log.WarnContext(ctx, "step event", "step", r.step.ID, "error", err)
	}
}

// pruneEvents keeps the newest keep events of the step: the sync step logs
// every pass for the migration's life.
func (r *run) pruneEvents(ctx context.Context, keep int) {
	sys := viewer.SystemContext(ctx)
	ids, err := r.l.Client.StepEvent.Query().Where(stepevent.StepID(r.step.ID)).Order(ent.Desc(stepevent.FieldID)).
		Offset(keep - 1).Limit(1).IDs(sys)
	if err != nil || len(ids) == 0 {
		return
	}
	if _, err := r.l.Client.StepEvent.Delete().Where(stepevent.StepID(r.step.ID), stepevent.IDLT(ids[0])).Exec(sys); err != nil {
		r.l.Log.WarnContext(ctx, "prune step events", "step", r.step.ID, "error", err)
	}
}

// transition moves the migration to `to` if the state machine allows it
// from the state the row holds now, applying more in the same update;
// ECONFLICT when it does not (the state moved on). Every state write of the
// lifecycle goes through here.
func (l *Lifecycle) transition(ctx context.Context, c *ent.Client, mig *ent.Migration, to ferry.MigrationState, more func(*ent.MigrationUpdateOne)) error {
	cur, err := c.Migration.Get(ctx, mig.ID)
	if err != nil {
		return err
	}
	if !cur.State.CanMoveTo(to) {
		return ferry.Errorf(ferry.ECONFLICT, "migration %d cannot move from %s to %s", mig.ID, cur.State, to)
	}
	u := c.Migration.UpdateOneID(mig.ID).Where(migration.StateEQ(cur.State)).SetState(to).SetStateChangedAt(l.Now().UTC())
	if more != nil {
		more(u)
	}
	if err := u.Exec(ctx); ent.IsNotFound(err) {
		return ferry.Errorf(ferry.ECONFLICT, "migration %d moved on from %s", mig.ID, cur.State)
	} else if err != nil {
		return err
	}
	mig.State = to
	return nil
}

// enqueue sends a step's task of one generation; a task of that id already
// queued is success.
func (l *Lifecycle) enqueue(ctx context.Context, kind string, stepID, gen, migID int, at time.Time) error {
	if !at.After(l.Now()) {
		at = time.Time{}
	}
	t, opts, err := NewStepTaskOn(l.node(ctx, migID), kind, StepPayload{StepID: stepID, Generation: gen, MigrationID: migID}, at)
	if err != nil {
		return err
	}
	// The enqueuer's trace goes with the task (the API request that
	// started the migration, or the step that woke the next).
	t = asynq.NewTaskWithHeaders(t.Type(), t.Payload(), telemetry.Headers(ctx))
	_, err = l.Queue.Client.EnqueueContext(ctx, t, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue %s step %d: %w", kind, stepID, err)
	}
	return nil
}

// wake runs a parked step now (a pending one: its task again). A step that
// is running is left alone: its holder rechecks before it parks.
func (l *Lifecycle) wake(ctx context.Context, id int) error {
	sys := viewer.SystemContext(ctx)
	st, err := l.Client.Step.Get(sys, id)
	if err != nil {
		return err
	}
	now := l.Now().UTC()
	switch st.Status {
	case step.StatusPending:
		return l.enqueue(ctx, st.Kind, st.ID, st.Generation, st.MigrationID, time.Time{})
	case step.StatusWaiting:
		n, err := l.Client.Step.Update().Where(step.ID(id), step.StatusEQ(step.StatusWaiting), step.Generation(st.Generation)).
			SetGeneration(st.Generation + 1).SetWakeAt(now).Save(sys)
		if err != nil || n == 0 {
			return err
		}
		return l.enqueue(ctx, st.Kind, st.ID, st.Generation+1, st.MigrationID, time.Time{})
	}
	return nil
}
