// Package migration runs the migration of a host as an itinerary: a
// migration's work is a handful of steps (prepare, the continuous sync, test
// launches, the cutover, a rollback), each a row whose current phase is
// persisted, held by one worker at a time through a compare-and-set lease on
// the row, and logged in the step's events. A step's phases are data
// (itinerary.go) — adding one (an OS adaptation, a health check, an approval)
// is a line there and a function in the step's file — and every phase is
// idempotent, so a worker killed anywhere leaves a step that the next worker
// resumes at the phase it was in.
//
// Lifecycle is also the lifecycle service (ferry.MigrationService) the API
// calls: it checks the state machine of the root vocabulary, records the
// change with the step it calls for, and enqueues the step's task once the
// change is committed.
//
// Files: tasks.go (task types, payloads, task ids), itinerary.go (phases as
// data), run.go (claim, lease, run, persist, log), reconcile.go, service.go,
// one file per step (prepare.go, sync.go, testlaunch.go, cutover.go,
// rollback.go) and the launch phases they share (launch.go), the agent's sync
// commands (commands.go) and the in-process gateway's gate (gate.go).
package migration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
)

var _ ferry.MigrationService = (*Lifecycle)(nil)

// Lifecycle runs migrations. The zero value of every duration takes the
// default given with it. A Lifecycle is safe for concurrent use once
// Register (or any method) has been called.
type Lifecycle struct {
	Client *ent.Client
	Queue  *jobs.Queue
	// Clouds opens a migration's cloud driver from its account.
	Clouds *cloud.Registry
	// OpenSecret opens a cloud account's sealed secret for the provider.
	OpenSecret func(ctx context.Context, a *ent.CloudAccount) ([]byte, error)
	// Gateway is the control plane's in-process gateway (disks whose
	// endpoint has no URL); nil in a process that serves none.
	Gateway engine.GatewayClient
	// Gateways returns the client of a remote gateway (a disk endpoint with
	// a URL); nil when none is known to this build.
	Gateways func(url, fingerprint string) (engine.GatewayClient, error)
	Now      func() time.Time
	Log      *slog.Logger
	// Hooks runs the migrations' pre- and post-step hooks (nil: none).
	Hooks HookRunner

	// SyncEvery is the pause between continuous sync passes (5 min).
	SyncEvery time.Duration
	// Redeliver resends a sync command when the gateway has seen nothing of
	// the pass for this long (45 s). Agents ignore duplicates.
	Redeliver time.Duration
	// CredentialTTL is the life of a per-disk credential (24 h); a fresh
	// one goes with every command.
	CredentialTTL time.Duration
	// Retention of recovery points when a migration's settings name none
	// (cloud.DefaultRetention).
	Retention cloud.RetentionPolicy
	// Tick is how often the sync follower reads the gateways (1 s);
	// FollowFor bounds one run of the follower (20 s) so that workers are
	// shared between migrations.
	Tick, FollowFor time.Duration
	// Lease is how long a claimed step stays claimed without renewal (60 s);
	// the holder renews it every Lease/6. A worker that dies is noticed once
	// its lease runs out (RecoverLeases).
	Lease time.Duration

	// BeforePhase, when set, runs before every phase a worker starts (tests
	// stop workers in a chosen phase with it).
	BeforePhase func(ctx context.Context, kind, phase string, stepID int)

	once  sync.Once
	owner string // this process's lease-owner prefix
}

func (l *Lifecycle) init() {
	l.once.Do(func() {
		if l.Now == nil {
			l.Now = time.Now
		}
		if l.Log == nil {
			l.Log = slog.Default()
		}
		if l.SyncEvery <= 0 {
			l.SyncEvery = 5 * time.Minute
		}
		if l.Redeliver <= 0 {
			l.Redeliver = 45 * time.Second
		}
		if l.CredentialTTL <= 0 {
			l.CredentialTTL = 24 * time.Hour
		}
		if l.Retention.KeepLast == 0 && l.Retention.KeepDaily == 0 {
			l.Retention = cloud.DefaultRetention
		}
		if l.Tick <= 0 {
			l.Tick = time.Second
		}
		if l.FollowFor <= 0 {
			l.FollowFor = 20 * time.Second
		}
		if l.Lease <= 0 {
			l.Lease = time.Minute
		}
		if l.Clouds == nil {
			l.Clouds = cloud.NewRegistry()
		}
		l.owner = processOwner
	})
}

// processOwner names this process in the leases it takes: host, pid and a
// nonce drawn at start, so that a later process with the same pid (a
// container's pid 1) knows the leases of its predecessor for dead ones.
var processOwner = func() string {
	host, _ := os.Hostname()
	host = strings.ReplaceAll(host, "/", "_")
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}()

// Register adds a handler for every step kind to mux.
func (l *Lifecycle) Register(mux *asynq.ServeMux) {
	l.init()
	for _, typ := range Types {
		mux.HandleFunc(typ, l.handle)
	}
}

func systemContext(ctx context.Context) context.Context { return viewer.SystemContext(ctx) }
func tenantContext(ctx context.Context, tenant int) context.Context {
	return viewer.TenantContext(ctx, tenant)
}

// driver opens the cloud driver of the migration's account (the built-in
// local cloud when it has none).
func (l *Lifecycle) driver(ctx context.Context, mig *ent.Migration) (cloud.Driver, error) {
	a := cloud.Account{Provider: "local", Name: "local"}
	acc, err := mig.QueryCloudAccount().Only(ctx)
	switch {
	case ent.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("cloud account of migration %d: %w", mig.ID, err)
	default:
		a = cloud.Account{ID: strconv.Itoa(acc.ID), Name: acc.Name, Provider: string(acc.Provider), Region: acc.Region, AccessKeyID: acc.AccessKeyID}
		if len(acc.SecretCiphertext) > 0 {
			if l.OpenSecret == nil {
				return nil, fmt.Errorf("cloud account %q: no key to open its secret in this process", acc.Name)
			}
			if a.Secret, err = l.OpenSecret(ctx, acc); err != nil {
				return nil, fmt.Errorf("cloud account %q: open secret: %w", acc.Name, err)
			}
		}
	}
	return l.Clouds.Open(ctx, a)
}

// gateway returns the client of the gateway a disk syncs to.
func (l *Lifecycle) gateway(d ferry.MigrationDisk) (engine.GatewayClient, error) {
	if d.GatewayURL == "" {
		if l.Gateway == nil {
			return nil, errors.New("this process serves no in-process gateway")
		}
		return l.Gateway, nil
	}
	if l.Gateways == nil {
		return nil, fmt.Errorf("gateway %s of disk %s is not known to this process", d.GatewayURL, d.TargetDiskID)
	}
	return l.Gateways(d.GatewayURL, d.Fingerprint)
}

// retention is the migration's policy: settings.retention {keepLast,
// keepDaily} when given, else the Lifecycle's.
func (l *Lifecycle) retention(mig *ent.Migration) cloud.RetentionPolicy {
	p := l.Retention
	if r, ok := mig.Settings["retention"].(map[string]any); ok {
		if v, ok := r["keepLast"].(float64); ok && v >= 0 {
			p.KeepLast = int(v)
		}
		if v, ok := r["keepDaily"].(float64); ok && v >= 0 {
			p.KeepDaily = int(v)
		}
	}
	return p
}
