package wave

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect/imagetest"
	"github.com/ferry-migrate/ferry/engine/cloud/local"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
	"github.com/ferry-migrate/ferry/jobs/hook"
	"github.com/ferry-migrate/ferry/jobs/migration"
)

// env is a control plane in the test process: a real SQLite file, a real
// redis-server, the local cloud, the in-process gateway behind the
// lifecycle's gate on a real listener, and hosts whose agents are real
// engine.CommandRunners over image files, polling for their commands.
type env struct {
	t      *testing.T
	dir    string
	db     *database.DB
	c      *ent.Client
	sys    context.Context
	ctx    context.Context
	tenant *ent.Tenant
	hosts  []*ent.Host
	agents map[int]*ent.Agent // host id → agent
	wave   *ent.Wave
	prov   *local.Provider
	gw     *engine.Gateway
	ts     *httptest.Server
	redis  string
	q      *jobs.Queue
	l      *migration.Lifecycle
	o      *Orchestrator
	hooks  *hook.Runner
	srv    *asynq.Server
	logs   *logBuffer
	stop   context.CancelFunc
	wg     sync.WaitGroup
	// hooksDir holds the agents' hook scripts.
	hooksDir string
	images   map[string]string // host name → image
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// newEnv makes a plan with one wave of n hosts (web1..webN), each with an
// agent unless its name is in noAgent.
func newEnv(t *testing.T, n int, noAgent ...string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), sys: viewer.SystemContext(ctx), agents: map[int]*ent.Agent{}, images: map[string]string{}}
	var err error
	if e.db, err = database.Open(ctx, filepath.Join(e.dir, "ferry.db"), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.c = e.db.Client
	e.tenant = e.c.Tenant.Create().SetName("T").SetSlug("t").SaveX(e.sys)
	e.ctx = viewer.NewContext(ctx, &viewer.Viewer{TenantID: e.tenant.ID, Role: viewer.RoleOperator, Email: "op@example.com"})
	plan := e.c.Plan.Create().SetTenantID(e.tenant.ID).SetName("p").SetStatus("ready").SetConstraints(map[string]any{"parallel_migrations": 5}).SaveX(e.sys)
	e.wave = e.c.Wave.Create().SetTenantID(e.tenant.ID).SetPlan(plan).SetOrdinal(1).SetName("wave 1").SetHostCount(n).SaveX(e.sys)
	e.hooksDir = filepath.Join(e.dir, "hooks")
	os.MkdirAll(e.hooksDir, 0o755)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("web%d", i)
		h := e.c.Host.Create().SetTenantID(e.tenant.ID).SetName(name).SetCpus(1).SetMemoryMib(512).SaveX(e.sys)
		e.c.Disk.Create().SetTenantID(e.tenant.ID).SetHostID(h.ID).SetName("vda").SetSizeBytes(8 << 20).ExecX(e.sys)
		e.images[name] = e.image(name, 8<<20)
		skip := false
		for _, s := range noAgent {
			skip = skip || s == name
		}
		if !skip {
			e.agents[h.ID] = e.c.Agent.Create().SetTenantID(e.tenant.ID).SetCredentialHash([]byte("h" + name)).SetHostID(h.ID).SaveX(e.sys)
		}
		e.c.WaveMember.Create().SetTenantID(e.tenant.ID).SetWave(e.wave).SetHost(h).ExecX(e.sys)
		e.hosts = append(e.hosts, h)
	}
	e.prov = &local.Provider{Dir: filepath.Join(e.dir, "cloud")}
	t.Cleanup(func() { e.prov.Close() })
	drv, err := e.prov.Driver()
	if err != nil {
		t.Fatal(err)
	}
	e.gw, err = engine.NewGateway(engine.GatewayOptions{Dir: filepath.Join(e.dir, "gateway"), Logf: func(string, ...any) {}, Resolve: func(id string) (string, error) {
		p, err := drv.DiskPath(id)
		if errors.Is(err, cloud.ErrNotFound) {
			return "", os.ErrNotExist
		}
		return p, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.redis = redistest.Start(t)
	e.logs = &logBuffer{}
	e.open()
	return e
}

// open makes the queue connection, the lifecycle, the hooks and the
// orchestrator: what a (re)started server process makes.
func (e *env) open() {
	t := e.t
	var err error
	if e.q, err = jobs.Open(e.redis); err != nil {
		t.Fatal(err)
	}
	q := e.q
	t.Cleanup(q.Close)
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	e.hooks = &hook.Runner{Client: e.c, Log: log, Backoff: 50 * time.Millisecond,
		Open: func(sealed string, tenant int) ([]byte, error) { return base64.StdEncoding.DecodeString(sealed) }}
	e.l = &migration.Lifecycle{Client: e.c, Queue: e.q, Clouds: cloud.NewRegistry(e.prov), Gateway: engine.LocalGateway{G: e.gw},
		Log: log, Tick: 50 * time.Millisecond, FollowFor: time.Second, Redeliver: 5 * time.Second, SyncEvery: time.Hour,
		Lease: 5 * time.Second, Hooks: e.hooks}
	if e.ts == nil {
		e.ts = httptest.NewServer(e.l.Gate(e.gw))
		t.Cleanup(e.ts.Close)
	}
	e.o = &Orchestrator{Client: e.c, Queue: e.q, Migrations: e.l, Log: log, Tick: 300 * time.Millisecond,
		Seal: func(plain []byte, tenant int) (string, error) { return base64.StdEncoding.EncodeToString(plain), nil }}
}

// work starts the workers and the agents' command loops.
func (e *env) work() {
	e.t.Helper()
	mux := asynq.NewServeMux()
	e.l.Register(mux)
	e.o.Register(mux)
	e.srv = jobs.NewServer(e.q, 6, e.l.Log)
	if err := e.srv.Start(mux); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	e.stop = cancel
	for _, h := range e.hosts {
		a := e.agents[h.ID]
		if a == nil {
			continue
		}
		runner := &engine.CommandRunner{Server: e.ts.URL, StateDir: filepath.Join(e.dir, "agent-"+h.Name), HooksDir: e.hooksDir,
			Sources: map[string]string{"vda": e.images[h.Name]}, RetryFor: 2 * time.Second}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer runner.Wait()
			for ctx.Err() == nil {
				cmds, err := e.l.SyncCommands(ctx, a.ID)
				if err == nil {
					for _, c := range cmds {
						b, _ := json.Marshal(c)
						runner.Handle(ctx, fmt.Sprintf("%d/%d", c.MigrationID, c.Pass), engine.CommandSync, b)
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond): // the agent's poll
				}
			}
		}()
	}
	e.t.Cleanup(e.stopWork)
}

// stopWork stops the agents and the workers (a server going down).
func (e *env) stopWork() {
	if e.stop != nil {
		e.stop()
		e.wg.Wait()
		e.stop = nil
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv = nil
	}
}

func (e *env) image(name string, size int64) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name+".img")
	f, err := os.Create(p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(size)
	if err := imagetest.WriteGPT(f, size, []imagetest.Part{{Start: 1 << 20, Size: size - 2<<20, GPTType: imagetest.GUIDLinux, Name: name}}); err != nil {
		e.t.Fatal(err)
	}
	f.WriteAt(imagetest.Superblock("ext4", name), 1<<20)
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	f.WriteAt(buf, 3<<20)
	return p
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

func (e *env) getWave() *ent.Wave { return e.c.Wave.GetX(e.sys, e.wave.ID) }

// members returns the wave's members by host name.
func (e *env) members() map[string]*ent.WaveMember {
	out := map[string]*ent.WaveMember{}
	for _, m := range e.c.WaveMember.Query().Where(wavemember.HasWaveWith()).WithHost().AllX(e.sys) {
		out[m.Edges.Host.Name] = m
	}
	return out
}

func (e *env) migOf(name string) *ent.Migration {
	m := e.members()[name]
	if m == nil || m.MigrationID == nil {
		return nil
	}
	return e.c.Migration.GetX(e.sys, *m.MigrationID)
}

// waitWave waits for the wave's status, reporting its members if it never comes.
func (e *env) waitWave(want string, d time.Duration) *ent.Wave {
	e.t.Helper()
	var w *ent.Wave
	end := time.Now().Add(d)
	for {
		w = e.getWave()
		if string(w.Status) == want {
			return w
		}
		if time.Now().After(end) {
			var b strings.Builder
			for name, m := range e.members() {
				st := "-"
				if mig := e.migOf(name); mig != nil {
					st = string(mig.State) + " " + mig.LastError + " " + mig.FailureReason
				}
				fmt.Fprintf(&b, "\n  %s: %s %q migration: %s", name, m.RunState, m.RunMessage, st)
			}
			e.t.Fatalf("wave is %s (%q), want %s; members:%s\nlog tail:\n%s", w.Status, w.RunMessage, want, b.String(), tail(e.logs.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// cutoverSteps returns the migration's cutover steps.
func (e *env) cutoverSteps(migID int) []*ent.Step {
	return e.c.Step.Query().Where(step.MigrationID(migID), step.Kind(migration.KindCutover)).AllX(e.sys)
}

func ptr[T any](v T) *T { return &v }

var _ = ferry.WaveStart{}
