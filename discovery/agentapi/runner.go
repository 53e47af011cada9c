package agentapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
)

// Runner is the agent's main loop: it takes utilisation samples, spools
// them in batches, flushes the spool, beats, re-sends the inventory when due
// or asked, and long-polls for commands. Collection is injected so the
// runner knows nothing of /proc.
type Runner struct {
	Client    *Client
	Spool     *Spool
	Inventory func(ctx context.Context) (discovery.Inventory, error)
	// Sample returns a utilisation sample; ok is false while priming.
	Sample func() (s discovery.UtilisationSample, ok bool, err error)
	// Connections, when set, is read at every sample; the established
	// connections seen during a batch travel with it, so short-lived
	// dependencies that a single inventory snapshot misses are still mapped.
	Connections func() ([]discovery.Connection, error)
	Version     string
	Now         func() time.Time
	Logger      *slog.Logger
	Backoff     Backoff
	// Sleep waits between the long-poll's retries (SleepContext when nil).
	Sleep func(context.Context, time.Duration) error

	// OnCommand receives commands the runner does not handle itself
	// (replication, for instance), so other packages can plug in.
	OnCommand func(Command)

	SampleEvery    time.Duration // default 1 min
	BatchSize      int           // samples per batch, default 15
	InventoryEvery time.Duration // default 6 h
	PollWait       time.Duration // default 30 s

	pending       []discovery.UtilisationSample
	seenConns     map[string]bool
	pendingConns  []discovery.Connection
	lastInventory time.Time
	inventoryDue  bool
	failures      int
	nextContact   time.Time
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func newBatchID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Once does one round: sample, spool what is pending, and (unless backing
// off) send inventory when due, flush the spool, and beat. Samples are
// spooled before any network call, so a failed round loses nothing. It
// returns the first error; ErrUnauthenticated means the agent must be
// registered again and retrying is pointless.
func (r *Runner) Once(ctx context.Context, flushAll bool) error {
	if r.Sample != nil {
		s, ok, err := r.Sample()
		if err != nil {
			r.log().Warn("sample", "err", err)
		} else if ok {
			r.pending = append(r.pending, s)
		}
	}
	if r.Connections != nil {
		r.observeConnections()
	}
	batch := r.BatchSize
	if batch <= 0 {
		batch = 15
	}
	if len(r.pending) >= batch || (flushAll && len(r.pending)+len(r.pendingConns) > 0) {
		dropped, err := r.Spool.Put(SamplesBatch{BatchID: newBatchID(), Samples: r.pending, Connections: r.pendingConns, ObservedAt: r.now().UTC()})
		if err != nil {
			return fmt.Errorf("spool samples: %w", err)
		}
		if dropped > 0 {
			r.log().Warn("spool full: dropped oldest sample batches", "dropped", dropped)
		}
		r.pending, r.pendingConns, r.seenConns = nil, nil, nil
	}
	if now := r.now(); now.Before(r.nextContact) {
		return nil
	}
	err := r.contact(ctx)
	if err != nil && Retryable(err) {
		r.nextContact = r.now().Add(r.Backoff.Delay(r.failures))
		r.failures++
	} else if err == nil {
		r.failures, r.nextContact = 0, time.Time{}
	}
	return err
}

func (r *Runner) contact(ctx context.Context) error {
	every := r.InventoryEvery
	if every <= 0 {
		every = 6 * time.Hour
	}
	if r.Inventory != nil && (r.inventoryDue || r.lastInventory.IsZero() || r.now().Sub(r.lastInventory) >= every) {
		inv, err := r.Inventory(ctx)
		if err != nil {
			return fmt.Errorf("collect inventory: %w", err)
		}
		TrimInventory(&inv)
		if err := r.Client.UploadInventory(ctx, inv); err != nil {
			return err
		}
		r.lastInventory, r.inventoryDue = r.now(), false
	}
	if _, err := r.Spool.Flush(ctx, r.Client.UploadSamples); err != nil {
		return err
	}
	n, bytes, _ := r.Spool.Pending()
	_, err := r.Client.Heartbeat(ctx, Heartbeat{AgentVersion: r.Version, SentAt: r.now().UTC(), BufferedBatches: n, BufferedBytes: bytes})
	return err
}

// Handle acts on a command from the control plane. Commands the runner
// does not know go to OnCommand, or are logged and ignored, so a newer
// control plane can add commands without breaking older agents.
func (r *Runner) Handle(c Command) {
	switch c.Type {
	case CommandCollectInventory:
		r.inventoryDue = true
	default:
		if r.OnCommand != nil {
			r.OnCommand(c)
			return
		}
		r.log().Info("ignoring unknown command", "id", c.ID, "type", c.Type)
	}
}

// Run loops until ctx ends or the credential is refused. The long-poll
// runs beside the sampling loop so commands arrive within a poll's round
// trip, not a sampling interval.
func (r *Runner) Run(ctx context.Context) error {
	sleep := r.Sleep
	if sleep == nil {
		sleep = SleepContext
	}
	every := r.SampleEvery
	if every <= 0 {
		every = time.Minute
	}
	wait := r.PollWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	cmds := make(chan Command, 16)
	pollErr := make(chan error, 1)
	go func() {
		failures := 0
		for ctx.Err() == nil {
			got, err := r.Client.PollCommands(ctx, wait)
			if err != nil {
				if !Retryable(err) {
					pollErr <- err
					return
				}
				failures++
				if sleep(ctx, r.Backoff.Delay(failures-1)) != nil {
					return
				}
				continue
			}
			failures = 0
			for _, c := range got {
				select {
				case cmds <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	for {
		if err := r.Once(ctx, false); err != nil {
			if errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrTokenRevoked) {
				return err
			}
			r.log().Warn("agent round failed; will retry", "err", err, "next_contact", r.nextContact)
		}
		// Until the next round, act on each command as it arrives: a sync
		// or a cutover's final pass must not wait out the sampling interval.
		next := time.NewTimer(every)
		for waiting := true; waiting; {
			select {
			case c := <-cmds:
				r.Handle(c)
			case err := <-pollErr:
				next.Stop()
				return err
			case <-next.C:
				waiting = false
			case <-ctx.Done():
				next.Stop()
				// Keep what was sampled: spool it so the next start sends it.
				if len(r.pending) > 0 {
					_, _ = r.Spool.Put(SamplesBatch{BatchID: newBatchID(), Samples: r.pending, ObservedAt: r.now().UTC()})
				}
				return nil
			}
		}
	}
}

// maxConnsPerBatch bounds a batch on a host with a connection storm; the
// distinct peers matter, not every ephemeral port.
const maxConnsPerBatch = 5000

// observeConnections records each distinct established connection (by
// peer, ports that identify the service, and process) once per batch.
func (r *Runner) observeConnections() {
	conns, err := r.Connections()
	if err != nil {
		r.log().Warn("read connections", "err", err)
		return
	}
	if r.seenConns == nil {
		r.seenConns = map[string]bool{}
	}
	for _, c := range conns {
		if c.State != "ESTABLISHED" || len(r.pendingConns) >= maxConnsPerBatch {
			continue
		}
		k := fmt.Sprintf("%s|%d|%s|%d|%s", c.LocalAddress, c.LocalPort, c.RemoteAddress, c.RemotePort, c.Process)
		if !r.seenConns[k] {
			r.seenConns[k] = true
			r.pendingConns = append(r.pendingConns, c)
		}
	}
}
