package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/recoverypoint"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// Migration task types (DESIGN.md §4). Payloads carry ids only; every
// handler re-reads the row and does nothing when the state says the work is
// done or no longer wanted, so redelivery is harmless.
const (
	TypeMigrationPrepare    = "migration:prepare"
	TypeMigrationSync       = "migration:sync"
	TypeMigrationTestLaunch = "migration:test_launch"
	TypeMigrationCutover    = "migration:cutover"
	TypeMigrationRollback   = "migration:rollback"
)

// MigrationPayload names the migration (and, for a test launch, the Launch
// row that records the request).
type MigrationPayload struct {
	MigrationID int `json:"migration_id"`
	LaunchID    int `json:"launch_id,omitempty"`
}

// NewMigrationTask returns a task of type typ for p. Cutover and rollback go
// to the critical queue.
func NewMigrationTask(typ string, p MigrationPayload) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	opts := []asynq.Option{asynq.MaxRetry(10)}
	switch typ {
	case TypeMigrationCutover, TypeMigrationRollback:
		opts = append(opts, asynq.Queue("critical"), asynq.Timeout(6*time.Hour))
	case TypeMigrationTestLaunch, TypeMigrationPrepare:
		opts = append(opts, asynq.Timeout(6*time.Hour))
	case TypeMigrationSync:
		opts = append(opts, asynq.Timeout(2*time.Minute))
	default:
		return nil, nil, fmt.Errorf("unknown migration task type %q", typ)
	}
	return asynq.NewTask(typ, b), opts, nil
}

// Sync states: the agent may write the migration's target disks while the
// migration is in one of them.
var syncStates = map[migration.State]bool{
	migration.StateInitialSync: true, migration.StateSyncing: true, migration.StateTestLaunched: true,
	migration.StateCutoverReady: true, migration.StateCuttingOver: true,
}

// ActiveStates are the states a host's migration blocks a new one in.
var terminalStates = map[migration.State]bool{migration.StateRolledBack: true, migration.StateFailed: true}

// Actions a user may ask for through the API.
const (
	ActionTestLaunch = "testLaunch"
	ActionCutover    = "cutover"
	ActionRollback   = "rollback"
)

// AllowedActions lists the actions the state allows, for buttons.
func AllowedActions(s migration.State) []string {
	var out []string
	for _, a := range []string{ActionTestLaunch, ActionCutover, ActionRollback} {
		if CheckAction(s, a) == nil {
			out = append(out, a)
		}
	}
	return out
}

// CheckAction says whether action is legal in state s, as an ECONFLICT
// *ferry.Error that tells the user what would make it legal.
func CheckAction(s migration.State, action string) error {
	switch action {
	case ActionTestLaunch:
		switch s {
		case migration.StateSyncing, migration.StateTestLaunched, migration.StateCutoverReady:
			return nil
		case migration.StatePending, migration.StatePreparing, migration.StateInitialSync:
			return ferry.Errorf(ferry.ECONFLICT, "cannot test-launch a migration in state %s: wait until the initial sync reaches 100%% and a recovery point exists", s)
		}
		return ferry.Errorf(ferry.ECONFLICT, "cannot test-launch a migration in state %s: it is no longer syncing", s)
	case ActionCutover:
		switch s {
		case migration.StateCutoverReady:
			return nil
		case migration.StateCuttingOver, migration.StateCutOver:
			return ferry.Errorf(ferry.ECONFLICT, "cannot cut over a migration in state %s: it is already cutting over or cut over", s)
		case migration.StateTestLaunched:
			return ferry.Errorf(ferry.ECONFLICT, "cannot cut over yet: the test launch is still running its checks; cut over once it passed (state cutover_ready)")
		}
		return ferry.Errorf(ferry.ECONFLICT, "cannot cut over a migration in state %s: test-launch a recovery point first; cutover needs a passed test launch (state cutover_ready)", s)
	case ActionRollback:
		switch s {
		case migration.StateTestLaunched, migration.StateCutoverReady, migration.StateCuttingOver, migration.StateCutOver, migration.StateFailed:
			return nil
		case migration.StateRollingBack, migration.StateRolledBack:
			return ferry.Errorf(ferry.ECONFLICT, "the migration is already %s", strings.ReplaceAll(string(s), "_", " "))
		}
		return ferry.Errorf(ferry.ECONFLICT, "cannot roll back a migration in state %s: nothing has been launched yet (rollback is for test-launched, cutover-ready, cutting-over and cut-over migrations)", s)
	}
	return ferry.Errorf(ferry.EINVALID, "unknown migration action %q", action)
}

// Migrations runs the migration lifecycle on one cloud driver with an
// in-process gateway. The local driver belongs to one process, so these
// handlers run inside `ferry serve`.
type Migrations struct {
	Client  *ent.Client
	Queue   *Queue
	Driver  cloud.Driver
	Gateway *engine.Gateway
	Now     func() time.Time
	Log     *slog.Logger
	// GatewayURL is sent to agents; empty tells them to use the control
	// plane they already talk to.
	GatewayURL string
	// SyncEvery is the pause between continuous sync passes (default 5 min).
	SyncEvery time.Duration
	// Redeliver resends a sync command when the gateway has seen nothing of
	// the pass for this long (default 45 s). Agents ignore duplicates.
	Redeliver time.Duration
	// CredentialTTL is the life of a per-disk credential (default 24 h); a
	// fresh one goes with every command.
	CredentialTTL time.Duration
	// Retention of recovery points per disk.
	Retention cloud.RetentionPolicy
	// Tick is how often a sync follower looks at progress (default 1 s);
	// FollowFor bounds one follower task (default 20 s) so that workers
	// are shared between migrations; IdleLook is how often a migration
	// between passes is looked at (default 5 s).
	Tick, FollowFor, IdleLook time.Duration

	mu        sync.Mutex // serialises read-modify-write of a migration's disk bookkeeping
	followers sync.Map   // migration id → *sync.Mutex: one follower at a time
	actMu     sync.Mutex
	activity  map[string]time.Time // target disk id → last gateway request
	rates     map[int]rateSample
}

type rateSample struct {
	at   time.Time
	done int64
	wire int64 // bytes the gateway received for the pass so far
	rate float64
}

func (m *Migrations) defaults() {
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.SyncEvery <= 0 {
		m.SyncEvery = 5 * time.Minute
	}
	if m.Redeliver <= 0 {
		m.Redeliver = 45 * time.Second
	}
	if m.CredentialTTL <= 0 {
		m.CredentialTTL = 24 * time.Hour
	}
	if m.Retention.KeepLast == 0 && m.Retention.KeepDaily == 0 {
		m.Retention = cloud.RetentionPolicy{KeepLast: 24, KeepDaily: 7}
	}
	if m.Tick <= 0 {
		m.Tick = time.Second
	}
	if m.FollowFor <= 0 {
		m.FollowFor = 20 * time.Second
	}
	if m.IdleLook <= 0 {
		m.IdleLook = 5 * time.Second
	}
}

// Register adds the migration handlers to mux.
func (m *Migrations) Register(mux *asynq.ServeMux) {
	m.defaults()
	mux.HandleFunc(TypeMigrationPrepare, m.handle(m.prepare))
	mux.HandleFunc(TypeMigrationSync, m.handle(m.follow))
	mux.HandleFunc(TypeMigrationTestLaunch, m.handle(m.testLaunch))
	mux.HandleFunc(TypeMigrationCutover, m.handle(m.cutover))
	mux.HandleFunc(TypeMigrationRollback, m.handle(m.rollback))
}

// permanent marks an error no retry can fix; the migration fails with it.
type permanent struct{ msg string }

func (p *permanent) Error() string { return p.msg }

func fail(format string, args ...any) error { return &permanent{fmt.Sprintf(format, args...)} }

// handle decodes the payload, runs fn in the migration's tenant, and turns a
// permanent error into the failed state (with the reason the user reads).
func (m *Migrations) handle(fn func(ctx context.Context, mig *ent.Migration, p MigrationPayload) error) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p MigrationPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.MigrationID == 0 {
			return fmt.Errorf("%s payload %q: %w", t.Type(), t.Payload(), asynq.SkipRetry)
		}
		mig, err := m.Client.Migration.Get(viewer.SystemContext(ctx), p.MigrationID)
		if ent.IsNotFound(err) {
			return nil // deleted: nothing to do
		}
		if err != nil {
			return err
		}
		ctx = viewer.TenantContext(ctx, mig.TenantID)
		err = fn(ctx, mig, p)
		var pe *permanent
		if errors.As(err, &pe) {
			m.Log.ErrorContext(ctx, "migration failed", "migration", mig.ID, "task", t.Type(), "reason", pe.msg)
			if uerr := m.setState(ctx, mig.ID, nil, migration.StateFailed, func(u *ent.MigrationUpdateOne) { u.SetFailureReason(pe.msg) }); uerr != nil {
				return uerr
			}
			return nil
		}
		return err
	}
}

// setState moves the migration to `to` when it is in one of `from` (any
// state when from is nil), applying more changes in the same update. It
// reports ECONFLICT when the state moved on meanwhile.
func (m *Migrations) setState(ctx context.Context, id int, from []migration.State, to migration.State, more func(*ent.MigrationUpdateOne)) error {
	u := m.Client.Migration.UpdateOneID(id).SetState(to).SetStateChangedAt(m.Now().UTC())
	if len(from) > 0 {
		u.Where(migration.StateIn(from...))
	}
	if more != nil {
		more(u)
	}
	_, err := u.Save(ctx)
	if ent.IsNotFound(err) && len(from) > 0 {
		return ferry.Errorf(ferry.ECONFLICT, "migration %d is no longer in state %v", id, from)
	}
	return err
}

// Enqueue enqueues a migration task. Tasks are idempotent, so a duplicate
// (task id conflict) is success.
func (m *Migrations) Enqueue(ctx context.Context, typ string, p MigrationPayload, extra ...asynq.Option) error {
	t, opts, err := NewMigrationTask(typ, p)
	if err != nil {
		return err
	}
	_, err = m.Queue.Client.EnqueueContext(ctx, t, append(opts, extra...)...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue %s for migration %d: %w", typ, p.MigrationID, err)
	}
	return nil
}

// Reconcile re-enqueues what the database says should be running: the
// embedded queue keeps nothing across restarts, and a lost enqueue must not
// strand a migration. Safe to run any time.
func (m *Migrations) Reconcile(ctx context.Context) (int, error) {
	m.defaults()
	sys := viewer.SystemContext(ctx)
	migs, err := m.Client.Migration.Query().
		Where(migration.StateNotIn(migration.StateCutOver, migration.StateRolledBack, migration.StateFailed)).All(sys)
	if err != nil {
		return 0, fmt.Errorf("reconcile migrations: %w", err)
	}
	n := 0
	for _, mig := range migs {
		p := MigrationPayload{MigrationID: mig.ID}
		var typ string
		switch mig.State {
		case migration.StatePending, migration.StatePreparing:
			typ = TypeMigrationPrepare
		case migration.StateRollingBack:
			typ = TypeMigrationRollback
		case migration.StateCuttingOver:
			typ = TypeMigrationSync
			if passRecorded(mig) {
				typ = TypeMigrationCutover
			}
		default:
			typ = TypeMigrationSync
		}
		if err := m.Enqueue(sys, typ, p); err != nil {
			return n, err
		}
		n++
		if mig.State == migration.StateTestLaunched {
			// A test launch whose task was lost: its Launch row is pending.
			ls, err := m.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(mig.ID)), launch.StatusEQ(launch.StatusPending), launch.KindEQ(launch.KindTest)).All(sys)
			if err != nil {
				return n, err
			}
			for _, l := range ls {
				if err := m.Enqueue(sys, TypeMigrationTestLaunch, MigrationPayload{MigrationID: mig.ID, LaunchID: l.ID}); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}

// passRecorded reports whether the requested sync pass has completed and
// its recovery point has been recorded.
func passRecorded(mig *ent.Migration) bool {
	return mig.SyncRequestedAt != nil && mig.LastSyncAt != nil && !mig.LastSyncAt.Before(*mig.SyncRequestedAt)
}

// diskPassDone reports whether the disk's part of the pass requested at req
// is done: a session opened after the request and the gateway proved the
// disk equal after that. A sync that began before the request (say, the
// continuous pass running when a cutover was asked for) does not count.
func diskPassDone(d ferry.MigrationDisk, req *time.Time) bool {
	return req != nil && d.StartedAt != nil && d.SyncedAt != nil &&
		!d.StartedAt.Before(*req) && !d.SyncedAt.Before(*d.StartedAt)
}

// TargetDiskID names a migration's target disk for a source disk; the
// gateway gate parses the migration id back out of it.
func TargetDiskID(migrationID int, diskName string) string {
	return fmt.Sprintf("m%d-%s", migrationID, safeName(diskName))
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string {
	s = strings.Trim(unsafeChars.ReplaceAllString(strings.TrimPrefix(s, "/dev/"), "_"), "._-")
	if s == "" {
		s = "disk"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

var targetDiskPattern = regexp.MustCompile(`^m([0-9]+)-`)

// MigrationOfDisk returns the migration id encoded in a target disk id.
func MigrationOfDisk(diskID string) (int, bool) {
	sm := targetDiskPattern.FindStringSubmatch(diskID)
	if sm == nil {
		return 0, false
	}
	id, err := strconv.Atoi(sm[1])
	return id, err == nil
}

// prepare creates the target disks (sized from the host's disks) and asks
// for the first sync pass.
func (m *Migrations) prepare(ctx context.Context, mig *ent.Migration, _ MigrationPayload) error {
	if mig.State != migration.StatePending && mig.State != migration.StatePreparing {
		return nil
	}
	if mig.State == migration.StatePending {
		if err := m.setState(ctx, mig.ID, []migration.State{migration.StatePending}, migration.StatePreparing, nil); err != nil {
			return err
		}
	}
	h, err := m.Client.Host.Get(ctx, mig.HostID)
	if err != nil {
		return fmt.Errorf("host of migration %d: %w", mig.ID, err)
	}
	rows, err := h.QueryDisks().All(ctx)
	if err != nil {
		return err
	}
	disks := mig.Disks
	if len(disks) == 0 {
		seen := map[string]bool{}
		for _, d := range rows {
			if d.SizeBytes <= 0 {
				continue
			}
			id := TargetDiskID(mig.ID, d.Name)
			if seen[id] {
				return fail("host %s reports two disks named %q; rename one in the inventory", h.Name, d.Name)
			}
			seen[id] = true
			disks = append(disks, ferry.MigrationDisk{Name: d.Name, Device: d.Device, SizeBytes: d.SizeBytes, TargetDiskID: id})
		}
	}
	if len(disks) == 0 {
		return fail("host %s has no disks with a known size in its inventory: run the agent on it (ferry agent run) so that it reports them, then start the migration again", h.Name)
	}
	var total int64
	for _, d := range disks {
		total += d.SizeBytes
		got, err := m.Driver.Disk(ctx, d.TargetDiskID)
		switch {
		case errors.Is(err, cloud.ErrNotFound):
			if _, err := m.Driver.CreateDisk(ctx, cloud.DiskSpec{ID: d.TargetDiskID, SizeBytes: d.SizeBytes, MigrationID: strconv.Itoa(mig.ID)}); err != nil && !errors.Is(err, cloud.ErrConflict) {
				if errors.Is(err, cloud.ErrInvalid) {
					return fail("create target disk for %s: %v", d.Name, err)
				}
				return fmt.Errorf("create target disk %s: %w", d.TargetDiskID, err)
			}
		case err != nil:
			return fmt.Errorf("target disk %s: %w", d.TargetDiskID, err)
		case got.SizeBytes < d.SizeBytes:
			if _, err := m.Driver.ResizeDisk(ctx, d.TargetDiskID, d.SizeBytes); err != nil {
				return fmt.Errorf("grow target disk %s: %w", d.TargetDiskID, err)
			}
		}
		if _, err := m.Driver.PrepareGateway(ctx, d.TargetDiskID); err != nil {
			return fmt.Errorf("prepare gateway for %s: %w", d.TargetDiskID, err)
		}
	}
	now := m.Now().UTC()
	err = m.setState(ctx, mig.ID, []migration.State{migration.StatePreparing}, migration.StateInitialSync, func(u *ent.MigrationUpdateOne) {
		u.SetDisks(disks).SetBytesTotal(total).SetBytesDone(0).SetSyncPass(1).SetSyncRequestedAt(now).ClearCommandSentAt().SetLastError("")
	})
	if err != nil {
		return err
	}
	m.Log.InfoContext(ctx, "migration prepared", "migration", mig.ID, "host", h.Name, "disks", len(disks), "bytes", total)
	return m.Enqueue(ctx, TypeMigrationSync, MigrationPayload{MigrationID: mig.ID})
}

// SyncCommands is the agent-side half of migration:sync: for the agent's
// host, every migration whose requested pass has not run yet yields a
// "sync" command, with fresh per-disk credentials. A command is sent again
// when the gateway has heard nothing of the pass for Redeliver; agents
// ignore duplicates of a pass they are running.
func (m *Migrations) SyncCommands(ctx context.Context, agentID int) ([]engine.SyncCommand, error) {
	m.defaults()
	a, err := m.Client.Agent.Query().Where(agent.ID(agentID)).Only(viewer.SystemContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("agent %d: %w", agentID, err)
	}
	ctx = viewer.TenantContext(ctx, a.TenantID)
	h, err := a.QueryHost().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil // not linked to a host yet
	}
	if err != nil {
		return nil, err
	}
	states := make([]migration.State, 0, len(syncStates))
	for s := range syncStates {
		states = append(states, s)
	}
	migs, err := m.Client.Migration.Query().Where(migration.HostID(h.ID), migration.StateIn(states...), migration.SyncRequestedAtNotNil()).All(ctx)
	if err != nil {
		return nil, err
	}
	now := m.Now().UTC()
	var out []engine.SyncCommand
	for _, mig := range migs {
		if passRecorded(mig) || !m.due(mig, now) {
			continue
		}
		c := engine.SyncCommand{MigrationID: mig.ID, Pass: mig.SyncPass, Final: mig.State == migration.StateCuttingOver, Gateway: m.GatewayURL}
		if r, ok := mig.Settings["rate"].(string); ok {
			c.Rate = r
		}
		for _, d := range mig.Disks {
			if diskPassDone(d, mig.SyncRequestedAt) {
				continue // this disk's part of the pass is done
			}
			// Named for the agent (revocation reaches the data path) and scoped
			// to the tenant (the gateway shares blocks only among its disks).
			cred, err := m.Gateway.IssueScopedCredential(d.TargetDiskID, engine.AgentSubject(agentID), strconv.Itoa(mig.TenantID), m.CredentialTTL)
			if err != nil {
				return nil, fmt.Errorf("credential for %s: %w", d.TargetDiskID, err)
			}
			c.Disks = append(c.Disks, engine.SyncCommandDisk{Name: d.Name, Device: d.Device, SizeBytes: d.SizeBytes, DiskID: d.TargetDiskID, Credential: cred})
		}
		if len(c.Disks) == 0 {
			continue
		}
		u := m.Client.Migration.UpdateOneID(mig.ID).SetCommandSentAt(now)
		if mig.LastError == errNoAgent {
			u.SetLastError("")
		}
		if err := u.Exec(ctx); err != nil {
			return nil, err
		}
		m.Log.InfoContext(ctx, "sync command sent", "migration", mig.ID, "agent", agentID, "pass", mig.SyncPass, "disks", len(c.Disks), "final", c.Final)
		out = append(out, c)
	}
	return out, nil
}

// due reports whether the pass's command should go (again) now.
func (m *Migrations) due(mig *ent.Migration, now time.Time) bool {
	if mig.CommandSentAt == nil || mig.CommandSentAt.Before(*mig.SyncRequestedAt) {
		return true
	}
	last := *mig.CommandSentAt
	m.actMu.Lock()
	for _, d := range mig.Disks {
		if t := m.activity[d.TargetDiskID]; t.After(last) {
			last = t
		}
	}
	m.actMu.Unlock()
	return now.Sub(last) >= m.Redeliver
}

// follow is migration:sync: it watches the gateway's checkpoints for a
// while, writes progress to the row, records a recovery point when a pass
// completes, requests the next continuous pass, and re-enqueues itself
// while the migration is syncing.
func (m *Migrations) follow(ctx context.Context, mig *ent.Migration, p MigrationPayload) error {
	if !syncStates[mig.State] {
		return nil
	}
	lk, _ := m.followers.LoadOrStore(mig.ID, &sync.Mutex{})
	mu := lk.(*sync.Mutex)
	if !mu.TryLock() {
		return nil // another follower is on it
	}
	defer mu.Unlock()
	deadline := m.Now().Add(m.FollowFor)
	t := time.NewTicker(m.Tick)
	defer t.Stop()
	for {
		cur, err := m.Client.Migration.Get(ctx, mig.ID)
		if err != nil {
			return err
		}
		if !syncStates[cur.State] {
			return nil
		}
		if idle := m.idleFor(cur); idle > 0 {
			// Between continuous passes: look again shortly (a cutover or
			// a due pass is noticed within IdleLook), without writing.
			return m.Enqueue(context.WithoutCancel(ctx), TypeMigrationSync, p, asynq.ProcessIn(min(idle, m.IdleLook)))
		}
		if err := m.step(ctx, cur); err != nil {
			var pe *permanent
			if errors.As(err, &pe) {
				return err
			}
			m.Log.WarnContext(ctx, "sync step failed; retrying", "migration", mig.ID, "error", err)
			_ = m.Client.Migration.UpdateOneID(mig.ID).SetLastError(err.Error()).Exec(ctx)
		}
		if m.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	// Hand over to a fresh task so workers are shared between migrations.
	return m.Enqueue(context.WithoutCancel(ctx), TypeMigrationSync, p, asynq.ProcessIn(time.Second))
}

// idleFor says how long until the migration's next continuous pass is due
// when it is between passes (0 when a pass is under way or due now).
func (m *Migrations) idleFor(mig *ent.Migration) time.Duration {
	if !passRecorded(mig) || mig.State == migration.StateCuttingOver {
		return 0
	}
	if d := mig.LastSyncAt.Add(m.SyncEvery).Sub(m.Now()); d > 0 {
		return max(d, time.Second)
	}
	return 0
}

// errNoAgent is the lastError of a pass no agent has asked for.
const errNoAgent = "waiting for the host's agent to ask for work: run `ferry agent run` on the host, registered with this server"

// step is one look at a syncing migration.
func (m *Migrations) step(ctx context.Context, mig *ent.Migration) error {
	now := m.Now().UTC()
	req := mig.SyncRequestedAt
	var done, total, wire int64
	complete := req != nil
	disks := mig.Disks
	for i, d := range disks {
		total += d.SizeBytes
		switch {
		case diskPassDone(d, req):
			disks[i].BytesDone = d.SizeBytes
		case req != nil && d.StartedAt != nil && !d.StartedAt.Before(*req):
			complete = false
			cp, err := m.Gateway.Checkpoint(d.TargetDiskID)
			if err == nil && !cp.Verified {
				disks[i].BytesDone = min(cp.Offset, d.SizeBytes)
				wire += cp.WireBytes
			}
		default:
			complete = false
			disks[i].BytesDone = 0
		}
		done += disks[i].BytesDone
	}
	rate, eta := m.rate(mig.ID, done, total, wire, now)
	if !complete && req != nil && mig.CommandSentAt == nil && now.Sub(*req) > 30*time.Second && mig.LastError == "" {
		// Nobody asked for the pass: say where to look.
		_ = m.Client.Migration.UpdateOneID(mig.ID).SetLastError(errNoAgent).Exec(ctx)
	}
	upd := m.Client.Migration.UpdateOneID(mig.ID).Where(migration.StateEQ(mig.State)).
		SetBytesTotal(total).SetBytesDone(done).SetRateBps(rate).SetEtaSeconds(eta)
	if mig.LastSyncAt != nil {
		upd.SetLagSeconds(int64(now.Sub(*mig.LastSyncAt).Seconds()))
	}
	if complete && !passRecorded(mig) {
		return m.recordPass(ctx, mig, now)
	}
	if _, err := m.saveDisks(ctx, mig.ID, func(cur []ferry.MigrationDisk) {
		for i := range cur {
			for _, d := range disks {
				if d.TargetDiskID == cur[i].TargetDiskID {
					cur[i].BytesDone = d.BytesDone
				}
			}
		}
	}); err != nil {
		return err
	}
	if passRecorded(mig) && mig.State != migration.StateCuttingOver && now.Sub(*mig.LastSyncAt) >= m.SyncEvery {
		// Continuous replication: the next pass.
		upd.AddSyncPass(1).SetSyncRequestedAt(now).ClearCommandSentAt().SetBytesDone(0)
		m.Log.InfoContext(ctx, "next sync pass requested", "migration", mig.ID, "pass", mig.SyncPass+1)
	}
	err := upd.Exec(ctx)
	if ent.IsNotFound(err) {
		return nil // the state moved on; the next look sees it
	}
	return err
}

// rate estimates the pass's rate on the wire (bytes/s, smoothed; the scan
// over unchanged and empty blocks runs far faster than the link and is not
// the transfer's speed) and its ETA (seconds, -1 when unknown): the scan
// still to do, times the wire bytes per scanned byte so far, at that rate.
func (m *Migrations) rate(id int, done, total, wire int64, now time.Time) (int64, int64) {
	m.actMu.Lock()
	defer m.actMu.Unlock()
	if m.rates == nil {
		m.rates = map[int]rateSample{}
	}
	prev, ok := m.rates[id]
	cur := rateSample{at: now, done: done, wire: wire, rate: prev.rate}
	if ok && wire >= prev.wire && now.After(prev.at) {
		inst := float64(wire-prev.wire) / now.Sub(prev.at).Seconds()
		cur.rate = 0.5*prev.rate + 0.5*inst
	} else if wire < prev.wire {
		cur.rate = 0
	}
	m.rates[id] = cur
	eta := int64(-1)
	switch {
	case done >= total:
		eta = 0
	case cur.rate > 1 && done > 0:
		eta = int64(float64(total-done) * float64(wire) / float64(done) / cur.rate)
	}
	return int64(cur.rate), eta
}

// recordPass takes a recovery point of every disk and records it; the
// first pass moves the migration from initial_sync to syncing, the final
// pass of a cutover hands over to migration:cutover.
func (m *Migrations) recordPass(ctx context.Context, mig *ent.Migration, now time.Time) error {
	kind := "sync"
	switch mig.State {
	case migration.StateInitialSync:
		kind = "initial"
	case migration.StateCuttingOver:
		kind = "cutover"
	}
	var pts []ferry.DiskPoint
	var size int64
	consistent := true
	var ids, digests []string
	for _, d := range mig.Disks {
		rp, err := m.Driver.CreateRecoveryPoint(ctx, d.TargetDiskID, map[string]string{
			"migration": strconv.Itoa(mig.ID), "pass": strconv.Itoa(mig.SyncPass), "kind": kind, "disk": d.Name})
		if err != nil {
			return fmt.Errorf("recovery point of %s: %w", d.TargetDiskID, err)
		}
		pt := ferry.DiskPoint{DiskName: d.Name, TargetDiskID: d.TargetDiskID, PointID: rp.ID, Digest: rp.ManifestDigest, SizeBytes: rp.SizeBytes,
			Consistency: "the agent did not say how it read the disk"}
		if cp, err := m.Gateway.Checkpoint(d.TargetDiskID); err == nil && cp.Consistency != nil {
			pt.Consistent, pt.Consistency = cp.Consistency.Consistent, cp.Consistency.Note
		}
		if !pt.Consistent {
			consistent = false
			m.Log.WarnContext(ctx, "recovery point is NOT a point in time", "migration", mig.ID, "pass", mig.SyncPass, "disk", d.Name, "reason", pt.Consistency)
		}
		pts = append(pts, pt)
		size += rp.SizeBytes
		ids = append(ids, rp.ID)
		digests = append(digests, rp.ManifestDigest)
	}
	tx, err := m.Client.Tx(ctx)
	if err != nil {
		return err
	}
	err = func() error {
		if err := tx.RecoveryPoint.Create().SetTenantID(mig.TenantID).SetMigrationID(mig.ID).SetExternalID(strings.Join(ids, ",")).
			SetSizeBytes(size).SetManifestDigest(strings.Join(digests, ",")).SetLabels([]string{kind, "pass:" + strconv.Itoa(mig.SyncPass), "consistent:" + strconv.FormatBool(consistent)}).
			SetPoints(pts).Exec(ctx); err != nil {
			return err
		}
		u := tx.Migration.UpdateOneID(mig.ID).Where(migration.StateEQ(mig.State)).SetLastSyncAt(now).SetLagSeconds(0).
			SetBytesDone(mig.BytesTotal).SetEtaSeconds(0).SetLastError("")
		if mig.State == migration.StateInitialSync {
			u.SetState(migration.StateSyncing).SetStateChangedAt(now)
		}
		return u.Exec(ctx)
	}()
	if err != nil {
		tx.Rollback()
		for _, id := range ids { // the row did not land: do not leave orphans
			_ = m.Driver.DeleteRecoveryPoint(context.WithoutCancel(ctx), id)
		}
		if ent.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	m.Log.InfoContext(ctx, "sync pass complete; recovery point taken", "migration", mig.ID, "pass", mig.SyncPass, "kind", kind, "points", strings.Join(ids, ","))
	m.applyRetention(ctx, mig)
	if mig.State == migration.StateCuttingOver {
		return m.Enqueue(ctx, TypeMigrationCutover, MigrationPayload{MigrationID: mig.ID})
	}
	return nil
}

// applyRetention drops old points the policy does not keep (never one a
// launch used); failures are logged, not fatal.
func (m *Migrations) applyRetention(ctx context.Context, mig *ent.Migration) {
	rows, err := m.Client.RecoveryPoint.Query().Where(recoverypoint.HasMigrationWith(migration.ID(mig.ID)), recoverypoint.Not(recoverypoint.HasLaunches())).
		Order(ent.Desc(recoverypoint.FieldCreatedAt)).All(ctx)
	if err != nil || len(rows) <= m.Retention.KeepLast {
		return
	}
	for _, rp := range rows[m.Retention.KeepLast:] {
		for _, p := range rp.Points {
			if err := m.Driver.DeleteRecoveryPoint(ctx, p.PointID); err != nil && !errors.Is(err, cloud.ErrNotFound) {
				m.Log.WarnContext(ctx, "retention: point kept", "point", p.PointID, "error", err)
			}
		}
		if err := m.Client.RecoveryPoint.DeleteOneID(rp.ID).Exec(ctx); err != nil {
			m.Log.WarnContext(ctx, "retention: row kept", "recovery_point", rp.ID, "error", err)
		}
	}
}

// saveDisks applies change to the migration's disk bookkeeping under the
// lock that serialises its writers (the follower and the gateway gate).
func (m *Migrations) saveDisks(ctx context.Context, id int, change func([]ferry.MigrationDisk)) (*ent.Migration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mig, err := m.Client.Migration.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	change(mig.Disks)
	return m.Client.Migration.UpdateOneID(id).SetDisks(mig.Disks).Save(ctx)
}

// launchPoint launches every disk of a recovery point; it returns the
// instances and the checks, each check named after its disk.
func (m *Migrations) launchPoint(ctx context.Context, mig *ent.Migration, rp *ent.RecoveryPoint, kind cloud.LaunchKind, record func([]ferry.DiskInstance) error) ([]ferry.DiskInstance, []map[string]any, bool, error) {
	var ins []ferry.DiskInstance
	var checks []map[string]any
	passed := true
	for _, p := range rp.Points {
		in, err := m.Driver.Launch(ctx, cloud.LaunchSpec{Kind: kind, RecoveryPointID: p.PointID, MigrationID: strconv.Itoa(mig.ID)})
		if err != nil {
			return ins, checks, false, fmt.Errorf("launch disk %s from point %s: %w", p.DiskName, p.PointID, err)
		}
		ins = append(ins, ferry.DiskInstance{DiskName: p.DiskName, InstanceID: in.ID, DiskID: in.DiskID, State: string(in.State)})
		if err := record(ins); err != nil {
			return ins, checks, false, err
		}
		for _, c := range in.Checks {
			checks = append(checks, map[string]any{"disk": p.DiskName, "name": c.Name, "passed": c.Passed, "skipped": c.Skipped, "message": c.Message})
		}
		passed = passed && in.Passed()
	}
	return ins, checks, passed, nil
}

func instanceIDs(ins []ferry.DiskInstance) string {
	ids := make([]string, len(ins))
	for i, in := range ins {
		ids[i] = in.InstanceID
	}
	return strings.Join(ids, ",")
}

func failedChecks(checks []map[string]any) string {
	var msgs []string
	for _, c := range checks {
		if p, _ := c["passed"].(bool); !p {
			msgs = append(msgs, fmt.Sprintf("%s %s: %s", c["disk"], c["name"], c["message"]))
		}
	}
	return strings.Join(msgs, "; ")
}

// discard terminates (test) or rolls back (cutover) a launch's instances.
func (m *Migrations) discard(ctx context.Context, l *ent.Launch) error {
	for _, in := range l.Instances {
		var err error
		if l.Kind == launch.KindCutover {
			err = m.Driver.Rollback(ctx, in.InstanceID)
		} else {
			err = m.Driver.Terminate(ctx, in.InstanceID)
		}
		if err != nil && !errors.Is(err, cloud.ErrNotFound) {
			return fmt.Errorf("discard instance %s: %w", in.InstanceID, err)
		}
	}
	return m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusTerminated).Exec(ctx)
}

// testLaunch materialises the chosen point, runs the launch checks and
// records them; the source and its replication are untouched. Passing
// checks make the migration cutover_ready.
func (m *Migrations) testLaunch(ctx context.Context, mig *ent.Migration, p MigrationPayload) error {
	l, err := m.Client.Launch.Query().Where(launch.ID(p.LaunchID)).WithRecoveryPoint().Only(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Status != launch.StatusPending {
		return nil // done already
	}
	if mig.State != migration.StateTestLaunched {
		return m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusTerminated).SetMessage("not launched: the migration moved to " + string(mig.State)).SetFinishedAt(m.Now().UTC()).Exec(ctx)
	}
	// A retry after a crash: discard what the last attempt launched.
	if len(l.Instances) > 0 {
		if err := m.discard(ctx, l); err != nil {
			return err
		}
		if err := m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusPending).ClearInstances().Exec(ctx); err != nil {
			return err
		}
	}
	rp := l.Edges.RecoveryPoint
	if rp == nil {
		return fail("test launch %d has no recovery point", l.ID)
	}
	ins, checks, passed, err := m.launchPoint(ctx, mig, rp, cloud.LaunchTest, func(ins []ferry.DiskInstance) error {
		return m.Client.Launch.UpdateOneID(l.ID).SetInstances(ins).SetInstanceID(instanceIDs(ins)).Exec(ctx)
	})
	now := m.Now().UTC()
	if err != nil {
		if errors.Is(err, cloud.ErrNotFound) || errors.Is(err, cloud.ErrCorrupt) || errors.Is(err, cloud.ErrInvalid) {
			// The point cannot be launched; the migration keeps syncing.
			msg := err.Error()
			_ = m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusFailed).SetMessage(msg).SetFinishedAt(now).Exec(ctx)
			return m.setState(ctx, mig.ID, []migration.State{migration.StateTestLaunched}, migration.StateSyncing, func(u *ent.MigrationUpdateOne) { u.SetLastError("test launch failed: " + msg) })
		}
		return err
	}
	status, next, msg := launch.StatusSucceeded, migration.StateCutoverReady, "all checks passed"
	if !passed {
		status, next, msg = launch.StatusFailed, migration.StateSyncing, "checks failed: "+failedChecks(checks)
	}
	if err := m.Client.Launch.UpdateOneID(l.ID).SetStatus(status).SetChecks(checks).SetInstances(ins).SetInstanceID(instanceIDs(ins)).
		SetMessage(msg).SetFinishedAt(now).Exec(ctx); err != nil {
		return err
	}
	lastErr := ""
	if !passed {
		lastErr = "test launch " + msg
	}
	err = m.setState(ctx, mig.ID, []migration.State{migration.StateTestLaunched}, next, func(u *ent.MigrationUpdateOne) { u.SetLastError(lastErr) })
	if err != nil && ferry.ErrorCode(err) == ferry.ECONFLICT {
		// Rolled back while this launch ran: the rollback may have come
		// and gone before these instances existed, so discard them here.
		l.Instances, l.Kind = ins, launch.KindTest
		return m.discard(ctx, l)
	}
	if err != nil {
		return err
	}
	m.Log.InfoContext(ctx, "test launch finished", "migration", mig.ID, "launch", l.ID, "passed", passed, "instances", instanceIDs(ins))
	// Older test copies are superseded by this one.
	old, err := m.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(mig.ID)), launch.KindEQ(launch.KindTest),
		launch.IDNEQ(l.ID), launch.StatusIn(launch.StatusSucceeded, launch.StatusFailed, launch.StatusRunning)).All(ctx)
	if err != nil {
		return err
	}
	for _, o := range old {
		if err := m.discard(ctx, o); err != nil {
			m.Log.WarnContext(ctx, "old test launch not discarded", "launch", o.ID, "error", err)
		}
	}
	return nil
}

// cutover runs after the final delta pass has been recorded: launch the
// cutover point, verify, and make it live. A failed check rolls the launch
// back and returns the migration to cutover_ready with the reason.
func (m *Migrations) cutover(ctx context.Context, mig *ent.Migration, _ MigrationPayload) error {
	if mig.State != migration.StateCuttingOver {
		return nil
	}
	if !passRecorded(mig) {
		return m.Enqueue(ctx, TypeMigrationSync, MigrationPayload{MigrationID: mig.ID})
	}
	rp, err := m.Client.RecoveryPoint.Query().Where(recoverypoint.HasMigrationWith(migration.ID(mig.ID)), recoverypoint.CreatedAtGTE(*mig.SyncRequestedAt)).
		Order(ent.Desc(recoverypoint.FieldCreatedAt)).First(ctx)
	if ent.IsNotFound(err) {
		return fail("cutover: the final recovery point is missing")
	}
	if err != nil {
		return err
	}
	l, err := m.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(mig.ID)), launch.KindEQ(launch.KindCutover), launch.HasRecoveryPointWith(recoverypoint.ID(rp.ID))).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		l, err = m.Client.Launch.Create().SetTenantID(mig.TenantID).SetMigrationID(mig.ID).SetRecoveryPointID(rp.ID).SetKind(launch.KindCutover).Save(ctx)
		if err != nil {
			return err
		}
	case err != nil:
		return err
	case l.Status == launch.StatusSucceeded:
		return m.setState(ctx, mig.ID, []migration.State{migration.StateCuttingOver}, migration.StateCutOver, nil)
	case len(l.Instances) > 0:
		// A retry after a crash: roll back the half-made cutover first.
		if err := m.discard(ctx, l); err != nil {
			return err
		}
		if err := m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusPending).ClearInstances().Exec(ctx); err != nil {
			return err
		}
	}
	if err := m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusRunning).Exec(ctx); err != nil {
		return err
	}
	ins, checks, passed, err := m.launchPoint(ctx, mig, rp, cloud.LaunchCutover, func(ins []ferry.DiskInstance) error {
		return m.Client.Launch.UpdateOneID(l.ID).SetInstances(ins).SetInstanceID(instanceIDs(ins)).Exec(ctx)
	})
	now := m.Now().UTC()
	if err == nil && !passed {
		err = errors.New("checks failed: " + failedChecks(checks))
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// The source stays authoritative: undo and say why.
		l.Instances = ins
		l.Kind = launch.KindCutover
		if derr := m.discard(ctx, l); derr != nil {
			return derr
		}
		msg := err.Error()
		if uerr := m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusFailed).SetChecks(checks).SetMessage(msg).SetFinishedAt(now).Exec(ctx); uerr != nil {
			return uerr
		}
		m.Log.WarnContext(ctx, "cutover failed; back to cutover_ready", "migration", mig.ID, "error", msg)
		return m.setState(ctx, mig.ID, []migration.State{migration.StateCuttingOver}, migration.StateCutoverReady, func(u *ent.MigrationUpdateOne) {
			u.SetLastError("cutover failed, the source is still authoritative: " + msg)
		})
	}
	if err := m.Client.Launch.UpdateOneID(l.ID).SetStatus(launch.StatusSucceeded).SetChecks(checks).SetInstances(ins).SetInstanceID(instanceIDs(ins)).
		SetMessage("live: all checks passed").SetFinishedAt(now).Exec(ctx); err != nil {
		return err
	}
	// The test copies have served their purpose.
	old, err := m.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(mig.ID)), launch.KindEQ(launch.KindTest), launch.StatusNEQ(launch.StatusTerminated)).All(ctx)
	if err != nil {
		return err
	}
	for _, o := range old {
		if err := m.discard(ctx, o); err != nil {
			return err
		}
	}
	err = m.setState(ctx, mig.ID, []migration.State{migration.StateCuttingOver}, migration.StateCutOver, func(u *ent.MigrationUpdateOne) { u.SetLastError("") })
	if ferry.ErrorCode(err) == ferry.ECONFLICT {
		// Rolled back while the launch ran: the source is authoritative,
		// so the copy made live here must go too.
		l.Instances, l.Kind = ins, launch.KindCutover
		m.Log.WarnContext(ctx, "cutover overtaken by a rollback; discarding its launch", "migration", mig.ID)
		return m.discard(ctx, l)
	}
	if err != nil {
		return err
	}
	m.Log.InfoContext(ctx, "cut over", "migration", mig.ID, "instances", instanceIDs(ins))
	return nil
}

// rollback discards every launched copy; the source was never touched and
// is authoritative again. Replication stops (the gateway refuses the disks).
func (m *Migrations) rollback(ctx context.Context, mig *ent.Migration, _ MigrationPayload) error {
	if mig.State != migration.StateRollingBack {
		return nil
	}
	ls, err := m.Client.Launch.Query().Where(launch.HasMigrationWith(migration.ID(mig.ID)), launch.StatusNEQ(launch.StatusTerminated)).All(ctx)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if err := m.discard(ctx, l); err != nil {
			return err
		}
	}
	for _, d := range mig.Disks {
		if err := m.Driver.ReleaseGateway(ctx, d.TargetDiskID); err != nil {
			return err
		}
	}
	m.Log.InfoContext(ctx, "rolled back", "migration", mig.ID, "launches", len(ls))
	return m.setState(ctx, mig.ID, []migration.State{migration.StateRollingBack}, migration.StateRolledBack, nil)
}
