// Package wave runs a plan's wave over the migration lifecycle
// (ferry.MigrationService): it starts the members that have an agent, at
// most the cap at a time and the rest in the wave's order, test-launches
// each once its initial sync is done, cuts them over in the wave's cutover
// window (or at a host's own time) once someone with the approver role has
// approved, holds and reports a host that is not ready at its time, and
// rolls back alone a host whose cutover failed, so that the wave ends cut
// over or partially cut over with the list.
//
// The database is the source of truth: the wave row holds its settings and
// its resolved cutover window, each member its run state and migration.
// The only task is a tick ("wave:tick"), which re-derives everything from
// the rows in one transaction and enqueues the next tick (at the next
// cutover time when that comes first); a duplicate or lost tick changes
// nothing, and the reconciler enqueues one for every running wave at start.
package wave

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
)

// TypeTick is the wave's task type.
const TypeTick = "wave:tick"

// TickPayload names the wave.
type TickPayload struct {
	WaveID int `json:"wave_id"`
}

// Running lists the statuses of a wave whose run is under way.
var Running = []wave.Status{wave.StatusReplicating, wave.StatusReady, wave.StatusCuttingOver}

var _ ferry.WaveService = (*Orchestrator)(nil)

// Orchestrator runs waves. Zero durations take the defaults given.
type Orchestrator struct {
	Client     *ent.Client
	Queue      *jobs.Queue
	Migrations ferry.MigrationService
	// Seal seals a webhook's secret for the wave's settings (nil: webhooks
	// with a secret are refused).
	Seal func(plain []byte, tenant int) (string, error)
	Now  func() time.Time
	Log  *slog.Logger
	// Tick is how often a running wave looks at its members (10 s).
	Tick time.Duration
	// CutoverTimeout bounds a host's cutover (2 h): one still cutting over
	// after it — its final pass never came because a must-succeed agent
	// script refused it, or its agent went away — is rolled back alone, so
	// that no host keeps a wave from ending.
	CutoverTimeout time.Duration
}

func (o *Orchestrator) cutoverTimeout() time.Duration {
	if o.CutoverTimeout <= 0 {
		return 2 * time.Hour
	}
	return o.CutoverTimeout
}

func (o *Orchestrator) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

func (o *Orchestrator) log() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}

func (o *Orchestrator) tick() time.Duration {
	if o.Tick <= 0 {
		return 10 * time.Second
	}
	return o.Tick
}

// Register adds the tick's handler to mux.
func (o *Orchestrator) Register(mux *asynq.ServeMux) { mux.HandleFunc(TypeTick, o.handle) }

// enqueue asks for a tick of the wave at at (now when zero). The task id
// names the wave and the second, so ticks asked for the same second are
// one.
func (o *Orchestrator) enqueue(ctx context.Context, waveID int, at time.Time) error {
	if at.IsZero() || at.Before(o.now()) {
		at = o.now()
	}
	b, _ := json.Marshal(TickPayload{WaveID: waveID})
	id := "wave:" + strconv.Itoa(waveID) + ":" + strconv.FormatInt(at.Unix(), 10)
	_, err := o.Queue.Client.EnqueueContext(ctx, asynq.NewTask(TypeTick, b), asynq.TaskID(id), asynq.ProcessAt(at),
		asynq.Queue("critical"), asynq.MaxRetry(5), asynq.Timeout(2*time.Minute), asynq.Retention(time.Minute))
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return err
}

func (o *Orchestrator) handle(ctx context.Context, t *asynq.Task) error {
	var p TickPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("wave tick payload: %v: %w", err, asynq.SkipRetry)
	}
	w, err := o.Client.Wave.Get(viewer.SystemContext(ctx), p.WaveID)
	if ent.IsNotFound(err) {
		return nil // the plan was regenerated: its waves are gone
	}
	if err != nil {
		return err
	}
	ctx = viewer.TenantContext(ctx, w.TenantID)
	next, err := o.Advance(ctx, p.WaveID)
	if err != nil {
		return err
	}
	if !next.IsZero() {
		if next.Unix() <= o.now().Unix() {
			next = o.now().Add(time.Second) // the running task holds this second's id
		}
		return o.enqueue(ctx, p.WaveID, next)
	}
	return nil
}

// Reconcile enqueues a tick for every running wave (at start-up and on the
// reconciler's timer): the rows say everything the tick needs.
func (o *Orchestrator) Reconcile(ctx context.Context) (int, error) {
	ctx = viewer.SystemContext(ctx)
	ids, err := o.Client.Wave.Query().Where(wave.StatusIn(Running...)).IDs(ctx)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := o.enqueue(ctx, id, time.Time{}); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// inTx runs fn in the caller's transaction, or in one of its own; after
// runs once it has committed.
func (o *Orchestrator) inTx(ctx context.Context, fn func(ctx context.Context, c *ent.Client) error, after func(ctx context.Context)) error {
	if tx := ent.TxFromContext(ctx); tx != nil {
		if err := fn(ctx, tx.Client()); err != nil {
			return err
		}
		if after != nil {
			tx.OnCommit(func(next ent.Committer) ent.Committer {
				return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
					err := next.Commit(ctx, tx)
					if err == nil {
						after(context.WithoutCancel(ctx))
					}
					return err
				})
			})
		}
		return nil
	}
	tx, err := o.Client.Tx(ctx)
	if err != nil {
		return err
	}
	tctx := ent.NewTxContext(ctx, tx)
	if err := fn(ent.NewContext(tctx, tx.Client()), tx.Client()); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if after != nil {
		after(ctx)
	}
	return nil
}
