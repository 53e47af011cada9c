package migration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// activeStatuses are the statuses of a step that is not over.
var activeStatuses = []step.Status{step.StatusPending, step.StatusRunning, step.StatusWaiting}

// Reconcile re-derives the queued work from the database: the embedded
// queue keeps nothing across restarts, and a lost enqueue must not strand a
// migration. It gives every unfinished migration the steps its state calls
// for (a database from before steps, or a step lost with a crash), then
// enqueues each unfinished step's task — never one for a step a live lease
// holds: that step is running, and its holder enqueues what follows. Task
// ids make a second enqueue of a queued task a no-op. It returns how many
// tasks it sent. Safe to run any time.
func (l *Lifecycle) Reconcile(ctx context.Context) (int, error) {
	l.init()
	sys := viewer.SystemContext(ctx)
	if err := l.adopt(sys); err != nil {
		return 0, err
	}
	l.pruneArchived(sys)
	return l.enqueueSteps(sys, false)
}

// RecoverLeases re-arms the steps whose worker died: running, with a lease
// that ran out or whose owner was a process of this host that is gone; and
// due steps whose task died with a worker before it claimed them
// (rearmStranded). It is cheap (running steps are as few as the workers,
// stranded ones fewer) and runs every half lease while workers run.
func (l *Lifecycle) RecoverLeases(ctx context.Context) (int, error) {
	l.init()
	sys := viewer.SystemContext(ctx)
	n, err := l.enqueueSteps(sys, true)
	if err != nil {
		return n, err
	}
	m, err := l.rearmStranded(sys)
	return n + m, err
}

// rearmStranded re-arms, under the next generation, the steps that have
// been due for longer than a lease (pending, or waiting past wake_at)
// without a worker claiming them, when the queue no longer holds their
// task for one: it is active in a worker that is gone (asynq marks it
// orphaned once its own 30 s lease lapses, but hands it back only after its
// recoverer's next round and a retry backoff — a minute and more), it came
// back as a retry for that reason, or it is not in the queue at all (an
// enqueue lost after its commit). A worker SIGKILLed between taking a
// step's task and claiming the step left that step waiting that long. A
// task still pending or scheduled (a busy queue), held by a live worker, or
// retried after its handler failed (its backoff stands) is left alone; the
// old task, if it ever runs, finds a newer generation and does nothing.
func (l *Lifecycle) rearmStranded(ctx context.Context) (int, error) {
	if l.Queue == nil || l.Queue.Inspector == nil {
		return 0, nil
	}
	before := l.Now().UTC().Add(-l.Lease)
	steps, err := l.Client.Step.Query().Where(step.Or(
		step.And(step.StatusEQ(step.StatusPending), step.UpdatedAtLT(before)),
		step.And(step.StatusEQ(step.StatusWaiting), step.WakeAtLT(before)),
	)).Order(ent.Asc(step.FieldID)).Limit(100).All(ctx)
	if err != nil {
		return 0, fmt.Errorf("stranded steps: %w", err)
	}
	orphaned := map[string]map[string]bool{} // queue → its orphaned active task ids, listed once
	n := 0
	for _, s := range steps {
		q, id := QueueOf(l.node(ctx, s.MigrationID), s.Kind), TaskID(s.ID, s.Generation)
		ti, err := l.Queue.Inspector.GetTaskInfo(q, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		case err != nil:
			l.Log.WarnContext(ctx, "inspect a step's task", "step", s.ID, "task", id, "error", err)
			continue
		case ti.State == asynq.TaskStateActive:
			if orphaned[q] == nil {
				orphaned[q] = map[string]bool{}
				active, err := l.Queue.Inspector.ListActiveTasks(q, asynq.PageSize(1000))
				if err != nil {
					l.Log.WarnContext(ctx, "inspect the active tasks", "queue", q, "error", err)
				}
				for _, t := range active {
					orphaned[q][t.ID] = t.IsOrphaned
				}
			}
			if !orphaned[q][id] {
				continue // a live worker has it
			}
		case ti.State == asynq.TaskStateRetry && strings.Contains(ti.LastErr, "lease expired"):
		case ti.State == asynq.TaskStateCompleted:
		default:
			continue
		}
		k, err := l.Client.Step.Update().Where(step.ID(s.ID), step.Generation(s.Generation), step.StatusEQ(s.Status)).
			SetGeneration(s.Generation + 1).Save(ctx)
		if err != nil {
			return n, err
		}
		if k == 0 {
			continue // claimed or moved on meanwhile
		}
		l.Log.InfoContext(ctx, "step's task was lost with its worker; re-armed", "migration", s.MigrationID, "step", s.ID, "kind", s.Kind, "phase", s.Phase, "task", id)
		if err := l.enqueue(ctx, s.Kind, s.ID, s.Generation+1, s.MigrationID, time.Time{}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// adopt creates the steps unfinished migrations lack.
func (l *Lifecycle) adopt(ctx context.Context) error {
	migs, err := l.Client.Migration.Query().
		Where(migration.StateNotIn(ferry.MigrationCutOver, ferry.MigrationRolledBack, ferry.MigrationFailed)).
		Select(migration.FieldID, migration.FieldState, migration.FieldTenantID).All(ctx)
	if err != nil {
		return fmt.Errorf("reconcile migrations: %w", err)
	}
	if len(migs) == 0 {
		return nil
	}
	steps, err := l.Client.Step.Query().Where(step.StatusIn(activeStatuses...)).
		Select(step.FieldMigrationID, step.FieldKind, step.FieldLaunchID).All(ctx)
	if err != nil {
		return fmt.Errorf("reconcile steps: %w", err)
	}
	has := map[string]bool{}
	launchHas := map[int]bool{}
	for _, s := range steps {
		has[strconv.Itoa(s.MigrationID)+"/"+s.Kind] = true
		if s.LaunchID != nil {
			launchHas[*s.LaunchID] = true
		}
	}
	for _, m := range migs {
		var kinds []string
		switch {
		case m.State == ferry.MigrationPending || m.State == ferry.MigrationPreparing:
			kinds = []string{KindPrepare}
		case m.State == ferry.MigrationRollingBack:
			kinds = []string{KindRollback}
		case m.State.Replicating():
			kinds = []string{KindSync}
			if m.State == ferry.MigrationCuttingOver {
				kinds = append(kinds, KindCutover)
			}
		}
		for _, k := range kinds {
			if has[strconv.Itoa(m.ID)+"/"+k] {
				continue
			}
			// In a transaction that looks again: two processes reconciling
			// at once make one step (SQLite serialises the writers).
			if err := l.inTx(ctx, func(ctx context.Context, c *ent.Client) error { _, err := ensureStep(ctx, c, m, k); return err }); err != nil {
				return fmt.Errorf("adopt migration %d: %w", m.ID, err)
			}
			l.Log.InfoContext(ctx, "migration given the step its state calls for", "migration", m.ID, "state", m.State, "step", k)
		}
		if m.State == ferry.MigrationTestLaunched {
			// A test launch asked for with no step (an older database).
			ls, err := l.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(m.ID)), launch.KindEQ(launch.KindTest),
				launch.StatusIn(launch.StatusPending, launch.StatusRunning)).IDs(ctx)
			if err != nil {
				return err
			}
			for _, id := range ls {
				if launchHas[id] {
					continue
				}
				if err := l.Client.Step.Create().SetTenantID(m.TenantID).SetMigrationID(m.ID).SetKind(KindTestLaunch).SetLaunchID(id).Exec(ctx); err != nil {
					return fmt.Errorf("adopt launch %d: %w", id, err)
				}
			}
		}
	}
	return nil
}

// RearmPrefix starts the step event the reconciler writes when it releases
// a step whose holder stopped: "re-armed at generation G: released from
// OWNER (dead: BOOL), whose lease ran out at RFC3339".
const RearmPrefix = "re-armed at "

// enqueueSteps enqueues the task of every unfinished step that is not held
// (only those whose holder died, with onlyDead).
func (l *Lifecycle) enqueueSteps(ctx context.Context, onlyDead bool) (int, error) {
	q := l.Client.Step.Query().Where(step.StatusIn(activeStatuses...))
	if onlyDead {
		q = l.Client.Step.Query().Where(step.StatusEQ(step.StatusRunning))
	}
	steps, err := q.All(ctx)
	if err != nil {
		return 0, fmt.Errorf("reconcile steps: %w", err)
	}
	now := l.Now().UTC()
	n := 0
	for _, s := range steps {
		gen, at := s.Generation, time.Time{}
		switch {
		case s.Status == step.StatusRunning:
			if s.LeaseUntil != nil && s.LeaseUntil.After(now) && !l.ownerDead(s.LeaseOwner) {
				continue // held: its worker is at it
			}
			// Its worker stopped: a new generation, so that the dead task
			// (asynq re-queues it a minute later) finds nothing to do.
			k, err := l.Client.Step.Update().Where(step.ID(s.ID), step.Generation(s.Generation), step.LeaseOwner(s.LeaseOwner)).
				SetGeneration(s.Generation + 1).SetLeaseOwner("").ClearLeaseUntil().Save(ctx)
			if err != nil {
				return n, err
			}
			if k == 0 {
				continue // someone else got there
			}
			gen++
			l.Log.InfoContext(ctx, "step's worker stopped; re-armed", "migration", s.MigrationID, "step", s.ID, "kind", s.Kind, "phase", s.Phase)
			// In the step's log too, as a claim's takeover is: the
			// holder it released and whether its lease had run out.
			until := "no lease"
			if s.LeaseUntil != nil {
				until = s.LeaseUntil.UTC().Format(time.RFC3339Nano)
			}
			err = l.Client.StepEvent.Create().SetTenantID(s.TenantID).SetStepID(s.ID).SetPhase(s.Phase).SetLevel(stepevent.LevelWarn).
				SetMessage(fmt.Sprintf("%sgeneration %d: released from %s (dead: %t), whose lease ran out at %s", RearmPrefix, gen, s.LeaseOwner, l.ownerDead(s.LeaseOwner), until)).
				SetCreatedAt(now).Exec(ctx)
			if err != nil {
				l.Log.WarnContext(ctx, "step event", "step", s.ID, "error", err)
			}
		case onlyDead:
			continue
		case s.Status == step.StatusWaiting && s.WakeAt == nil:
			continue // waits for an event (an approval), not a time
		case s.Status == step.StatusWaiting:
			at = *s.WakeAt
		}
		if err := l.enqueue(ctx, s.Kind, s.ID, gen, s.MigrationID, at); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ownerDead reports whether a lease owner ("host/pid/nonce") is a process
// of this host that no longer runs: an earlier life of this process (same
// pid, another nonce: a container's pid 1) or a pid that is gone. Owners on
// other hosts are never judged; their leases run out.
func (l *Lifecycle) ownerDead(owner string) bool {
	parts := strings.SplitN(owner, "/", 4)
	if len(parts) < 3 {
		return false
	}
	me := strings.SplitN(l.owner, "/", 3)
	if parts[0] != me[0] {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return parts[2] != me[2]
	}
	err = syscall.Kill(pid, 0)
	return err == syscall.ESRCH
}

// pruneArchived deletes migration tasks asynq archived after their retries
// ran out: the row is the truth, and an archived task would hold its id
// against the reconciler's enqueue.
func (l *Lifecycle) pruneArchived(ctx context.Context) {
	if l.Queue == nil || l.Queue.Inspector == nil {
		return
	}
	queues, err := l.Queue.Inspector.Queues() // node queues included
	if err != nil {
		return
	}
	for _, q := range queues {
		info, err := l.Queue.Inspector.GetQueueInfo(q)
		if err != nil || info.Archived == 0 {
			continue
		}
		tasks, err := l.Queue.Inspector.ListArchivedTasks(q, asynq.PageSize(1000))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			if strings.HasPrefix(t.Type, "migration:") {
				if err := l.Queue.Inspector.DeleteTask(q, t.ID); err == nil {
					l.Log.InfoContext(ctx, "deleted an archived migration task; the reconciler re-enqueues the step", "task", t.ID, "error", t.LastErr)
				}
			}
		}
	}
}
