package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/local"
	"github.com/ferry-migrate/ferry/jobs"
)

// wireMigration registers the migration area's task handlers (a.Mux) and routes
// (a.routes); called once from New.
//
// The local cloud driver and the in-process gateway live under
// <DataDir>/cloud and <DataDir>/gateway and belong to one process: the first
// process to lock <DataDir>/cloud/owner.lock runs migrations; in any other
// (a `ferry worker` on the same data directory) the migration tasks fail and
// are retried until the owner picks them up.
func (a *App) wireMigration() error {
	m, err := a.openMigrations()
	if err != nil {
		return err
	}
	if m == nil {
		a.Log.Warn("the local cloud driver is owned by another process on this data directory; migration tasks are left to it", "dir", filepath.Join(a.Config.DataDir, "cloud"))
		refuse := func(ctx context.Context, t *asynq.Task) error {
			return fmt.Errorf("%s: the local cloud driver is owned by another process (ferry serve) on this data directory", t.Type())
		}
		for _, typ := range []string{jobs.TypeMigrationPrepare, jobs.TypeMigrationSync, jobs.TypeMigrationTestLaunch, jobs.TypeMigrationCutover, jobs.TypeMigrationRollback} {
			a.Mux.HandleFunc(typ, refuse)
		}
		return nil
	}
	m.Register(a.Mux)
	a.Resolver.Migrations = m
	if a.Agents != nil {
		// Agents learn of sync passes through their long-poll.
		a.Agents.Commands = a.MigrationCommands
	}
	// The credential is checked before the gate looks the disk up, so an
	// anonymous caller learns nothing about which disks exist.
	gw := m.Gateway.RequireCredential(m.GatewayHandler())
	a.routes = append(a.routes, func(r chi.Router) { r.Handle("/sync/v1/*", gw) })
	// The queue may have lost everything (the embedded one always has):
	// re-derive the work from the database.
	n, err := m.Reconcile(context.Background())
	if err != nil {
		return fmt.Errorf("reconcile migrations: %w", err)
	}
	if n > 0 {
		a.Log.Info("re-enqueued migration work from the database", "tasks", n)
	}
	return nil
}

// openMigrations opens the driver and gateway, or returns nil when another
// process owns them.
func (a *App) openMigrations() (*jobs.Migrations, error) {
	dir := filepath.Join(a.Config.DataDir, "cloud")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local cloud: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "owner.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local cloud: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("local cloud: lock %s: %w", lock.Name(), err)
	}
	// The lock is held for the life of the process (the descriptor stays open).
	drv, err := local.New(dir, local.Options{Clock: a.Config.Now})
	if err != nil {
		return nil, err
	}
	log := a.Log.With("component", "gateway")
	gw, err := engine.NewGateway(engine.GatewayOptions{
		Dir: filepath.Join(a.Config.DataDir, "gateway"),
		Resolve: func(id string) (string, error) {
			p, err := drv.DiskPath(id)
			if errors.Is(err, cloud.ErrNotFound) {
				return "", fmt.Errorf("%w: %v", os.ErrNotExist, err)
			}
			return p, err
		},
		CheckpointBytes: 64 << 20, // progress granularity on the Migration row
		Now:             a.Config.Now,
		// A revoked agent's credentials stop working within seconds, not
		// when they expire (gatewayauth.go).
		Authorize: (&syncAuthorizer{client: a.DB.Client, now: a.Config.Now}).authorize,
		Logf:      func(f string, args ...any) { log.Info(fmt.Sprintf(f, args...)) },
	})
	if err != nil {
		return nil, err
	}
	m := &jobs.Migrations{Client: a.DB.Client, Queue: a.Queue, Driver: drv, Gateway: gw, Now: a.Config.Now, Log: a.Log}
	if v := os.Getenv("FERRY_SYNC_EVERY"); v != "" {
		if m.SyncEvery, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("FERRY_SYNC_EVERY: %w", err)
		}
	}
	if v := os.Getenv("FERRY_SYNC_REDELIVER"); v != "" {
		if m.Redeliver, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("FERRY_SYNC_REDELIVER: %w", err)
		}
	}
	return m, nil
}

// MigrationCommands is the agent store's Commands hook: the sync commands
// the database says the agent's host needs now.
func (a *App) MigrationCommands(ctx context.Context, agentID int) ([]agentapi.Command, error) {
	if a.Resolver == nil || a.Resolver.Migrations == nil {
		return nil, nil
	}
	cmds, err := a.Resolver.Migrations.SyncCommands(ctx, agentID)
	if err != nil {
		return nil, err
	}
	out := make([]agentapi.Command, 0, len(cmds))
	for _, c := range cmds {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		out = append(out, agentapi.Command{ID: "sync-" + strconv.Itoa(c.MigrationID) + "-" + strconv.Itoa(c.Pass), Type: engine.CommandSync, Payload: b})
	}
	return out, nil
}
