package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/local"
	"github.com/ferry-migrate/ferry/jobs/hook"
	"github.com/ferry-migrate/ferry/jobs/migration"
	"github.com/ferry-migrate/ferry/jobs/wave"
)

// wireMigration registers the cloud providers, the migration lifecycle
// service (every process: the API's mutations only write the database and
// enqueue), the step handlers and, in the process that owns the local cloud,
// the in-process gateway's routes and the agents' sync commands; called once
// from New.
//
// The local cloud and the in-process gateway live under <DataDir>/cloud and
// <DataDir>/gateway and belong to one process: the first to lock
// <DataDir>/cloud/owner.lock. In any other (a `ferry worker` on the same data
// directory) a step of a local migration cannot open its driver; its tasks
// go to the owner's node queues (node.go), which only the owner serves.
func (a *App) wireMigration() error {
	vmOpts, why := launchVMs()
	a.Log.Info("local cloud launches", "boot", vmOpts != nil, "why", why)
	prov := &local.Provider{Dir: filepath.Join(a.Config.DataDir, "cloud"), Options: local.Options{Clock: a.Config.Now, VM: vmOpts}}
	if vmOpts == nil {
		prov.Options.NoBootWhy = "ferry serve does not boot launches: " + why
	}
	a.Clouds.Register(prov)
	ali := a.alibabaProvider()
	a.Alibaba = ali
	a.Clouds.Register(ali)
	// The instances the Alibaba provider starts (gateways, repair
	// instances) call back here with one-time tickets.
	a.routes = append(a.routes, func(r chi.Router) {
		r.Handle(callbackPrefix+"/*", ali.Handler(a.Log.With("component", "cloud-callbacks")))
		// Remote gateways long-poll the revocations of their tenant here
		// (revocations.go), with the bearer their registration returned.
		r.Handle(engine.RevocationsPath, &revocationFeed{client: a.DB.Client, box: a.Secrets, gateway: ali.AuthenticateGateway,
			now: a.Config.Now, log: a.Log.With("component", "revocation-feed")})
	})
	l := &migration.Lifecycle{
		Client: a.DB.Client, Queue: a.Queue, Clouds: a.Clouds, Now: a.Config.Now, Log: a.Log,
		OpenSecret: a.Resolver.OpenCloudSecret,
		Gateways:   a.remoteGateway,
		Node:       a.migrationNode,
	}
	if a.Config.License != nil {
		l.Admit = licenseAdmission(a.Config.License)
	}
	for env, d := range map[string]*time.Duration{"FERRY_SYNC_EVERY": &l.SyncEvery, "FERRY_SYNC_REDELIVER": &l.Redeliver, "FERRY_STEP_LEASE": &l.Lease} {
		if v := os.Getenv(env); v != "" {
			var err error
			if *d, err = time.ParseDuration(v); err != nil {
				return fmt.Errorf("%s: %w", env, err)
			}
		}
	}
	a.Migrations = l
	a.Resolver.Migrations = l
	a.Resolver.MigrationSettings = l
	l.Register(a.Mux)
	if err := a.wireWaves(l); err != nil {
		return err
	}

	drv, err := prov.Driver()
	if errors.Is(err, cloud.ErrConflict) {
		a.Log.Warn("the local cloud driver is owned by another process on this data directory; its migration steps go to its node's queues", "dir", prov.Dir)
		return nil
	}
	if err != nil {
		return err
	}
	if a.Node, err = a.claimNode(); err != nil {
		return err
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
		return err
	}
	l.Gateway = engine.LocalGateway{G: gw}
	if a.Agents != nil {
		// Agents learn of sync passes through their long-poll.
		a.Agents.Commands = a.MigrationCommands
	}
	// The credential is checked before the gate looks the disk up, so an
	// anonymous caller learns nothing about which disks exist.
	gate := gw.RequireCredential(l.Gate(gw))
	a.routes = append(a.routes, func(r chi.Router) { r.Handle("/sync/v1/*", gate) })
	// The queue may have lost everything (the embedded one always has):
	// re-derive the work from the database.
	n, err := l.Reconcile(context.Background())
	if err != nil {
		return fmt.Errorf("reconcile migrations: %w", err)
	}
	if n > 0 {
		a.Log.Info("re-enqueued migration work from the database", "tasks", n)
	}
	return nil
}

// remoteGateway is the Lifecycle's Gateways hook: the gateway a cloud
// provider started and that registered at url with fingerprint (its
// credential key is in its account's records).
func (a *App) remoteGateway(url, fingerprint string) (engine.GatewayClient, error) {
	ctx := viewer.SystemContext(context.Background())
	ids, err := a.DB.Client.CloudAccount.Query().Where(cloudaccount.ProviderEQ(cloudaccount.ProviderAlibaba)).IDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		st, err := openCloudStore(ctx, a.DB.Client, a.Secrets, strconv.Itoa(id))
		if err != nil {
			return nil, err
		}
		gw, err := alibaba.GatewayClient(ctx, st, url, fingerprint)
		if err == nil {
			return gw, nil
		}
		if !errors.Is(err, cloud.ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no registered gateway at %s with certificate %s", url, fingerprint)
}

// launchVMs decides whether the local cloud's launches are real boots
// (issue 16): yes when qemu-system-x86_64 and qemu-img are installed and
// the process may loop-mount the copies it adapts (root), unless
// FERRY_LAUNCH_BOOT=off. Otherwise launches only materialise and inspect
// the disks, and the launch's checks say so. FERRY_LAUNCH_BOOT_TIMEOUT
// bounds a boot (default 4m).
func launchVMs() (*local.VMOptions, string) {
	switch os.Getenv("FERRY_LAUNCH_BOOT") {
	case "off", "false", "0":
		return nil, "FERRY_LAUNCH_BOOT=off"
	}
	for _, prog := range []string{"qemu-system-x86_64", "qemu-img", "qemu-storage-daemon"} {
		if _, err := exec.LookPath(prog); err != nil {
			return nil, prog + " not installed (Debian: qemu-system-x86, qemu-utils)"
		}
	}
	if os.Geteuid() != 0 {
		return nil, "not root: adapting a launch's copy loop-mounts it"
	}
	o := &local.VMOptions{}
	if v := os.Getenv("FERRY_LAUNCH_BOOT_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			o.BootTimeout = d
		}
	}
	return o, "qemu and qemu-img found"
}

// MigrationCommands is the agent store's Commands hook: the sync commands
// the database says the agent's host needs now.
func (a *App) MigrationCommands(ctx context.Context, agentID int) ([]agentapi.Command, error) {
	if a.Migrations == nil {
		return nil, nil
	}
	cmds, err := a.Migrations.SyncCommands(ctx, agentID)
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
	resumes, err := a.Migrations.ResumeCommands(ctx, agentID)
	if err != nil {
		return nil, err
	}
	for _, c := range resumes {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		out = append(out, agentapi.Command{ID: "resume-" + strconv.Itoa(c.MigrationID) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36), Type: engine.CommandResume, Payload: b})
	}
	return out, nil
}

// wireWaves adds the hooks the migration steps run and the wave
// orchestrator (every process: a tick only reads and writes the database
// and asks the lifecycle service), and re-enqueues the running waves.
func (a *App) wireWaves(l *migration.Lifecycle) error {
	box := a.Resolver.Secrets
	ad := func(tenant int) []byte { return []byte("hook:" + strconv.Itoa(tenant)) }
	l.Hooks = &hook.Runner{Client: a.DB.Client, Now: a.Config.Now, Log: a.Log.With("component", "hooks"),
		Open: func(sealed string, tenant int) ([]byte, error) {
			b, err := base64.StdEncoding.DecodeString(sealed)
			if err != nil {
				return nil, err
			}
			return box.Open(b, ad(tenant))
		}}
	o := &wave.Orchestrator{Client: a.DB.Client, Queue: a.Queue, Migrations: l, Now: a.Config.Now, Log: a.Log.With("component", "waves"),
		Seal: func(plain []byte, tenant int) (string, error) {
			return base64.StdEncoding.EncodeToString(box.Seal(plain, ad(tenant))), nil
		}}
	if v := os.Getenv("FERRY_WAVE_TICK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("FERRY_WAVE_TICK: %w", err)
		}
		o.Tick = d
	}
	a.Waves = o
	a.Resolver.Waves = o
	o.Register(a.Mux)
	if _, err := o.Reconcile(context.Background()); err != nil {
		return fmt.Errorf("reconcile waves: %w", err)
	}
	return nil
}
