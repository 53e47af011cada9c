package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	gw := m.GatewayHandler()
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
	prov := &local.Provider{Dir: filepath.Join(a.Config.DataDir, "cloud"), Options: local.Options{Clock: a.Config.Now}}
	a.Clouds.Register(prov)
	drv, err := prov.Driver()
	if errors.Is(err, cloud.ErrConflict) {
		return nil, nil
	}
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
		Logf:            func(f string, args ...any) { log.Info(fmt.Sprintf(f, args...)) },
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
