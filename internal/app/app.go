// Package app assembles a Ferry server from its parts (database, queue,
// GraphQL, HTTP, workers) so that `ferry serve`, the tests and the benchmarks
// run exactly the same wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/graph"
	"github.com/ferry-migrate/ferry/internal/agentstore"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/lease"
	"github.com/ferry-migrate/ferry/internal/license"
	"github.com/ferry-migrate/ferry/internal/secrets"
	"github.com/ferry-migrate/ferry/internal/telemetry"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/internal/web"
	"github.com/ferry-migrate/ferry/jobs"
	"github.com/ferry-migrate/ferry/jobs/migration"
	"github.com/ferry-migrate/ferry/jobs/wave"
)

// Config is everything a server needs; cmd fills it from flags and FERRY_* variables.
type Config struct {
	DataDir       string
	DatabaseURL   string
	RedisURL      string // empty: embedded queue
	AdminEmail    string
	AdminPassword string // empty: generate and print once
	Workers       int    // in-process task workers; 0 runs none but NodeWorkers
	// NodeWorkers serve this node's migration queues when Workers is 0 and
	// the process holds the local cloud (node.go); 0 means 4.
	NodeWorkers   int
	Migrate       bool
	SecureCookies bool
	// ReconcileEvery is how often the reconcilers re-derive queued work
	// from the database while workers run (default 5 minutes; start-up
	// always reconciles once).
	ReconcileEvery time.Duration
	// LeaseTTL is how long the scheduler lease outlives a holder that stopped
	// renewing it (default 15 s); tests shorten it.
	LeaseTTL time.Duration
	// KeysDir holds secrets.key and hmac.key (default DATA_DIR/keys). Every
	// replica of an installation must read the same keys: sessions' CSRF
	// tokens, registration tokens and sealed cloud secrets depend on them.
	KeysDir string
	// SocketRecheck is how often an open websocket's sign-in is checked
	// again (default 30 s); tests shorten it.
	SocketRecheck time.Duration
	// PublicURL is where agents reach this server (install commands);
	// empty: taken from each request's Host.
	PublicURL string
	UI        fs.FS
	Log       *slog.Logger
	// Banner receives the one-time admin password; default stderr.
	Banner io.Writer
	// Mount lets later parts add routes (agent protocol, uploads).
	Mount []func(chi.Router, *App)
	Now   func() time.Time
	// WrapDriver, when set, wraps the database driver (tests count statements with it).
	WrapDriver func(dialect.Driver) dialect.Driver
	// TrustedProxies are the peers allowed to name the client in
	// ClientIPHeader (FERRY_TRUSTED_PROXIES); default none.
	TrustedProxies []netip.Prefix
	// ClientIPHeader: X-Forwarded-For (default), Forwarded or X-Real-IP.
	ClientIPHeader string
	// MetricsToken lets a scraper read /metrics (FERRY_METRICS_TOKEN).
	MetricsToken string
	// License sets per-tenant quotas and an expiry (nil: none).
	License *license.License
	// Tracing says where OpenTelemetry spans go (none: tracing off).
	Tracing telemetry.Config
	// Marketplace configures the cloud-marketplace adapter and SPI
	// (docs/marketplace.md); without keys they answer "not configured".
	Marketplace MarketplaceConfig
}

// MarketplaceConfig holds the marketplace's keys.
type MarketplaceConfig struct {
	ISVKey       string        // FERRY_MARKETPLACE_ISV_KEY: the SPI token's key
	TokenKey     string        // FERRY_MARKETPLACE_TOKEN_KEY: verifies the adapter's accessToken
	ReleaseAfter time.Duration // a released instance's tenant is due for deletion after this (default 30 days)
}

// App is a running Ferry server's parts.
type App struct {
	Config  Config
	DB      *database.DB
	Queue   *jobs.Queue
	Secrets *secrets.Box
	Key     []byte // HMAC key (CSRF, registration tokens)
	Web     *web.Server
	Mux     *asynq.ServeMux
	Log     *slog.Logger
	// Resolver is the GraphQL resolver root, shared with the wiring files.
	Resolver *graph.Resolver
	// Migrations is the migration lifecycle (service and step handlers).
	Migrations *migration.Lifecycle
	Waves      *wave.Orchestrator
	// Clouds are the cloud providers compiled in (registered by the wiring
	// files: migration.go registers the local cloud).
	Clouds *cloud.Registry
	// Alibaba is the Alibaba Cloud provider as wired here (its records and
	// tickets in the database, its callback routes).
	Alibaba *alibaba.Provider
	// Agents is the agent protocol's store; set its Commands hook to hand
	// agents work (wired in discovery.go).
	Agents *agentstore.Store
	// Throttle is the sign-in throttle (on the queue's Redis).
	Throttle *auth.Throttle
	// routes are extra routes the wiring files add (agent protocol,
	// uploads, gateway), mounted with cfg.Mount.
	routes []func(chi.Router)

	// Node is the node this process is when it holds the local cloud
	// (node.go): it serves that node's queues.
	Node  string
	local localNode
	// Lease elects the process that runs the scheduler and reconcilers
	// (set by StartWorkers).
	Lease *lease.Lease
	// Registry holds the Prometheus collectors /metrics serves.
	Registry *prometheus.Registry

	worker      *asynq.Server
	leading     atomic.Bool
	stopTracing func(context.Context) error
	stopLoops   context.CancelFunc
	loops       sync.WaitGroup
	throttleDB  redis.UniversalClient
}

// New opens the database (migrating it), the queue, creates the first
// account on an empty database, and builds the HTTP handler.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Banner == nil {
		cfg.Banner = os.Stderr
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = filepath.Join(cfg.DataDir, "ferry.db")
	}
	a := &App{Config: cfg, Log: cfg.Log}
	if err := privateDataDir(cfg.DataDir, cfg.Log); err != nil {
		return nil, err
	}
	keyDir := cfg.KeysDir
	if keyDir == "" {
		keyDir = filepath.Join(cfg.DataDir, "keys")
	}
	sk, err := secrets.LoadOrCreateKey(filepath.Join(keyDir, "secrets.key"))
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	if a.Secrets, err = secrets.New(sk); err != nil {
		return nil, err
	}
	if a.Key, err = secrets.LoadOrCreateKey(filepath.Join(keyDir, "hmac.key")); err != nil {
		return nil, fmt.Errorf("hmac key: %w", err)
	}
	if a.DB, err = database.Open(ctx, cfg.DatabaseURL, cfg.Migrate); err != nil {
		return nil, err
	}
	if cfg.WrapDriver != nil {
		a.DB.Client = ent.NewClient(ent.Driver(cfg.WrapDriver(a.DB.Driver)))
	}
	if err := a.bootstrap(ctx); err != nil {
		a.Close()
		return nil, err
	}
	// Cloud secrets sealed before they were bound to their row are moved to
	// the row-bound form once, here, so nothing else ever opens the old one.
	moved, unreadable, err := graph.ResealCloudSecrets(ctx, a.DB.Client, a.Secrets)
	if err != nil {
		a.Close()
		return nil, err
	}
	if moved > 0 {
		cfg.Log.Info("cloud secrets re-sealed to their rows", "accounts", moved)
	}
	if unreadable > 0 {
		cfg.Log.Warn("cloud secrets that this server's key cannot open", "accounts", unreadable)
	}
	if a.Queue, err = jobs.Open(cfg.RedisURL); err != nil {
		a.Close()
		return nil, err
	}
	stopTracing, err := telemetry.Setup(ctx, cfg.Tracing)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.stopTracing = stopTracing
	a.Registry = prometheus.NewRegistry()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := telemetry.NewMetrics(a.Registry, telemetry.NewDBCollector(a.DB.Client, func(msg string, args ...any) { cfg.Log.Error(msg, args...) }))
	if !a.Queue.Embedded {
		// asynq's exporter: queue depth, latency, processed and failed per
		// queue. (It needs Redis's MEMORY USAGE, which the embedded queue
		// lacks; the operator console counts that queue itself.)
		a.Registry.MustRegister(asynqmetrics.NewQueueMetricsCollector(a.Queue.Inspector))
	}
	a.Mux = asynq.NewServeMux()
	a.Mux.Use(telemetry.TaskMiddleware(metrics))
	(&jobs.Maintenance{Client: a.DB.Client, Dialect: a.DB.Dialect, Now: cfg.Now, Log: cfg.Log}).Register(a.Mux)

	a.Clouds = cloud.NewRegistry()
	resolver := &graph.Resolver{
		Client: a.DB.Client, Secrets: a.Secrets, Key: a.Key, Queue: a.Queue, Clouds: a.Clouds,
		PublicURL: cfg.PublicURL, DataDir: cfg.DataDir, Log: cfg.Log, Now: cfg.Now,
	}
	a.Resolver = resolver
	// Each area wires its task handlers and routes in its own file
	// (discovery.go, planning.go, migration.go); a failure stops start-up.
	for _, wire := range []func() error{a.wireDiscovery, a.wirePlanning, a.wireMigration, a.wireReports} {
		if err := wire(); err != nil {
			a.Close()
			return nil, err
		}
	}
	// The sign-in throttle lives in the queue's Redis: every serve process
	// of an installation shares it, and a flood of failed sign-ins never
	// takes the database's write lock.
	rdb, ok := a.Queue.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		a.Close()
		return nil, fmt.Errorf("sign-in throttle: the queue's Redis connection is not a go-redis client")
	}
	a.throttleDB = rdb
	a.Throttle = auth.NewThrottle(rdb, auth.DefaultPolicy, cfg.Now)
	gql := graph.NewHandler(resolver, cfg.Log)
	a.wireMarketplace(gql)
	a.Web = web.New(web.Config{
		Client:         a.DB.Client,
		Throttle:       a.Throttle,
		Registry:       a.Registry,
		TrustedProxies: cfg.TrustedProxies,
		ClientIPHeader: cfg.ClientIPHeader,
		MetricsToken:   cfg.MetricsToken,
		GraphQL:        gql,
		UI:             cfg.UI,
		Log:            cfg.Log,
		Key:            a.Key,
		Secure:         cfg.SecureCookies,
		Now:            cfg.Now,
		// Subscriptions: an open websocket's sign-in is checked again this often.
		SocketRecheck: cfg.SocketRecheck,
		Ready: []web.Check{
			{Name: "database", Fn: func(ctx context.Context) error { return a.DB.SQL.PingContext(ctx) }},
			{Name: "queue", Fn: func(ctx context.Context) error { return a.Queue.Ping(ctx) }},
		},
		Mount: func(r chi.Router, _ *web.Server) {
			for _, m := range a.routes {
				m(r)
			}
			for _, m := range cfg.Mount {
				m(r, a)
			}
		},
	})
	return a, nil
}

// privateDataDir makes the data directory and the directories Ferry keeps
// in it 0700, tightening ones an older version (or an operator) left open to
// others: it holds the database, the keys and every replicated disk. Files
// are created 0600 where they are made (and the serve command's umask is
// 077 for anything else).
func privateDataDir(dir string, log *slog.Logger) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "keys"), filepath.Join(dir, "cloud"), filepath.Join(dir, "gateway")} {
		st, err := os.Stat(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(d, 0o700); err != nil {
				return fmt.Errorf("make %s private: %w", d, err)
			}
			log.Warn("made a data directory private (it was readable by other users)", "dir", d, "was", st.Mode().Perm().String())
		}
	}
	return nil
}

// bootstrap creates the default tenant and its first account when the
// database has no user yet. The account is the platform operator: it owns
// the default tenant and may create others.
func (a *App) bootstrap(ctx context.Context) error {
	sys := viewer.SystemContext(ctx)
	n, err := a.DB.Client.User.Query().Count(sys)
	if err != nil || n > 0 {
		return err
	}
	email := auth.NormalizeEmail(a.Config.AdminEmail)
	if email == "" {
		email = "admin@ferry.local"
	}
	pw, generated := a.Config.AdminPassword, false
	if pw == "" {
		pw, generated = auth.RandomPassword(), true
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("FERRY_ADMIN_PASSWORD: %w", err)
	}
	tx, err := a.DB.Client.Tx(sys)
	if err != nil {
		return err
	}
	err = func() error {
		t, err := tx.Tenant.Create().SetName("Default").SetSlug("default").Save(sys)
		if err != nil {
			return err
		}
		return tx.User.Create().SetTenantID(t.ID).SetEmail(email).SetName("Administrator").
			SetRole(user.RolePlatform).SetPasswordHash(hash).Exec(sys)
	}()
	if err == nil {
		err = tx.Commit()
	} else {
		tx.Rollback()
	}
	if ent.IsConstraintError(err) {
		// Another replica starting at the same moment made the first
		// account first: the default tenant's unique name stopped this one.
		if n, cerr := a.DB.Client.User.Query().Count(sys); cerr == nil && n > 0 {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("create the first account: %w", err)
	}
	{
		if generated {
			fmt.Fprintf(a.Config.Banner, "\n  Ferry created the first account.\n    email:    %s\n    password: %s  (shown once; change it after signing in)\n\n", email, pw)
		} else {
			a.Log.Info("created the first account from FERRY_ADMIN_EMAIL / FERRY_ADMIN_PASSWORD", "email", email)
		}
		return nil
	}
}

// LeaseKey is the Redis key of the lease that elects the one process
// running the scheduler and the periodic reconcilers across replicas.
const LeaseKey = "ferry:lease:scheduler"

// StartWorkers starts the in-process asynq server and, in whichever of the
// installation's processes holds the scheduler lease (internal/lease), the
// asynq scheduler and the periodic reconcilers: several serve replicas and
// workers then schedule each hourly task once and reconcile once per period.
//
// With Workers 0 a process holding node state (Node) still serves its
// node's queues, with NodeWorkers (4) workers: nobody else can run those
// steps.
func (a *App) StartWorkers() error {
	queues := map[string]int{}
	if a.Node != "" {
		queues = migration.NodeQueues(a.Node)
	}
	if a.Config.Workers <= 0 {
		if a.Node == "" {
			return nil
		}
		n := a.Config.NodeWorkers
		if n <= 0 {
			n = 4
		}
		a.worker = jobs.NewServerOf(a.Queue, n, queues, a.Log)
		if err := a.worker.Start(a.Mux); err != nil {
			return fmt.Errorf("start the node's workers: %w", err)
		}
		a.Log.Info("serving this node's migration queues only (workers 0)", "node", a.Node, "concurrency", n)
		return nil
	}
	for q, w := range jobs.Queues {
		queues[q] = w
	}
	a.worker = jobs.NewServerOf(a.Queue, a.Config.Workers, queues, a.Log)
	if err := a.worker.Start(a.Mux); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	every := a.Config.ReconcileEvery
	if every <= 0 {
		every = 5 * time.Minute
	}
	ttl := a.Config.LeaseTTL
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	a.Lease = lease.New(a.throttleDB, LeaseKey, ttl)
	ctx, cancel := context.WithCancel(context.Background())
	a.stopLoops = cancel
	if m := a.Migrations; m != nil {
		// A step whose worker died is re-armed once its lease runs out (at
		// once when the dead worker was on this host).
		a.loops.Add(1)
		go func() {
			defer a.loops.Done()
			a.every(ctx, max(m.Lease, time.Second)/2, "migration steps whose worker stopped", m.RecoverLeases)
		}()
	}
	a.loops.Add(1)
	go func() {
		defer a.loops.Done()
		a.Lease.Run(ctx, a.Log, a.lead(every))
	}()
	return nil
}

// lead is what the lease holder runs: the scheduler of the hourly tasks and
// the reconciler of plans and migrations, until the lease is lost.
func (a *App) lead(every time.Duration) func(context.Context) {
	return func(ctx context.Context) {
		sched := asynq.NewScheduler(a.Queue.Redis, &asynq.SchedulerOpts{HeartbeatInterval: time.Second, Logger: jobs.Logger(a.Log)})
		for _, task := range []func() (*asynq.Task, []asynq.Option){jobs.NewPruneSessionsTask, jobs.NewOptimizeDatabaseTask} {
			t, opts := task()
			if _, err := sched.Register("@hourly", t, opts...); err != nil {
				a.Log.Error("scheduler", "error", err)
				return
			}
		}
		// Stored discovery sources: the database says which are due.
		if t, opts := jobs.NewDiscoveryDueTask(); true {
			if _, err := sched.Register("@every 1m", t, opts...); err != nil {
				a.Log.Error("scheduler", "error", err)
				return
			}
		}
		if err := sched.Start(); err != nil {
			a.Log.Error("scheduler", "error", err)
			return
		}
		defer sched.Shutdown()
		a.leading.Store(true)
		defer a.leading.Store(false)
		// Plans and migrations: enqueues carry task ids, so this is safe
		// anywhere, but once across replicas is enough.
		a.every(ctx, every, "plans and migrations", a.Reconcile)
	}
}

// Leading reports whether this process holds the scheduler lease now.
func (a *App) Leading() bool { return a.leading.Load() }

// every runs reconcile every period until ctx ends, logging what it sent.
func (a *App) every(ctx context.Context, period time.Duration, what string, reconcile func(context.Context) (int, error)) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n, err := reconcile(ctx); err != nil && ctx.Err() == nil {
				a.Log.Error("reconcile", "what", what, "error", err)
			} else if n > 0 {
				a.Log.Info("reconciler re-enqueued work from the database", "what", what, "tasks", n)
			}
		}
	}
}

// Reconcile re-enqueues whatever the database says should be running
// (plans queued or running, migrations in flight) and returns how many tasks
// it sent. Enqueues carry task ids, so work already queued is not doubled.
// It runs at start-up and every Config.ReconcileEvery: a lost enqueue or a
// flushed Redis strands nothing for long.
func (a *App) Reconcile(ctx context.Context) (int, error) {
	n, err := jobs.ReconcilePlans(ctx, a.DB.Client, a.Queue)
	if err != nil {
		return n, err
	}
	if m := a.Migrations; m != nil {
		k, err := m.Reconcile(ctx)
		n += k
		if err != nil {
			return n, err
		}
	}
	if w := a.Waves; w != nil {
		k, err := w.Reconcile(ctx)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Serve listens on addr until ctx ends, then shuts down gracefully: in-flight
// requests finish, then in-flight tasks finish, then the stores close.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Web,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(a.Web.CloseSockets) // subscriptions end; Shutdown does not wait for websockets
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// ServeMetrics serves /metrics alone on ln (FERRY_METRICS_ADDR: a private
// address for the Prometheus scraper) until ctx ends.
func (a *App) ServeMetrics(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: a.Web.MetricsListenerHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// Close stops workers (waiting for running tasks) and closes the stores.
func (a *App) Close() {
	if a.stopLoops != nil {
		a.stopLoops()
		a.loops.Wait()
	}
	if a.worker != nil {
		a.worker.Shutdown()
	}
	if a.throttleDB != nil {
		a.throttleDB.Close()
	}
	if a.Queue != nil {
		a.Queue.Close()
	}
	if a.DB != nil {
		a.DB.Close()
	}
	if a.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		a.stopTracing(ctx)
		cancel()
	}
}
