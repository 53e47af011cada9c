package migration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
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
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
)

// env is one control plane in the test process: a real SQLite file, a
// queue (embedded, or a real redis-server), the local cloud in a temporary
// directory, the in-process gateway behind the lifecycle's gate on a real
// HTTP listener, and a host with an agent whose disks are image files.
type env struct {
	t        testing.TB
	dir      string
	db       *database.DB
	c        *ent.Client
	sys      context.Context
	ctx      context.Context // the tenant's
	tenant   *ent.Tenant
	host     *ent.Host
	agent    *ent.Agent
	prov     *local.Provider
	drv      *local.Driver
	gw       *engine.Gateway
	ts       *httptest.Server
	q        *jobs.Queue
	l        *Lifecycle
	sources  map[string]string // disk name → image file
	srv      *asynq.Server
	logs     *logBuffer // what the lifecycle logged
	redisURL string
}

// logBuffer collects log lines written from many goroutines.
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

type envOpts struct {
	redisURL string             // "" = embedded queue
	disks    []string           // the host's disks, in inventory order (default vda)
	size     int64              // of each disk (default 12 MiB)
	boot     *local.BootOptions // the local cloud's boot check
	vm       *local.VMOptions   // real boots (issue 16)
	// images are the disks' source files (copies are taken) instead of
	// generated ones; their sizes are the disks'.
	images map[string]string
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if len(o.disks) == 0 {
		o.disks = []string{"vda"}
	}
	if o.size == 0 {
		o.size = 12 << 20
	}
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), sys: viewer.SystemContext(ctx), sources: map[string]string{}, redisURL: o.redisURL}
	var err error
	if e.db, err = database.Open(ctx, filepath.Join(e.dir, "ferry.db"), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.c = e.db.Client
	e.tenant = e.c.Tenant.Create().SetName("T").SetSlug("t").SaveX(e.sys)
	e.ctx = viewer.TenantContext(ctx, e.tenant.ID)
	e.host = e.c.Host.Create().SetTenantID(e.tenant.ID).SetName("web1").SetCpus(2).SetMemoryMib(1024).SaveX(e.sys)
	for _, name := range o.disks {
		size := o.size
		if img, ok := o.images[name]; ok {
			e.sources[name] = vmtest.Copy(t, img)
			fi, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			size = fi.Size()
		} else {
			e.sources[name] = e.image(name, o.size)
		}
		e.c.Disk.Create().SetTenantID(e.tenant.ID).SetHostID(e.host.ID).SetName(name).SetSizeBytes(size).ExecX(e.sys)
	}
	e.agent = e.c.Agent.Create().SetTenantID(e.tenant.ID).SetCredentialHash([]byte("h")).SetHostID(e.host.ID).SaveX(e.sys)

	prov := &local.Provider{Dir: filepath.Join(e.dir, "cloud"), Options: local.Options{Boot: o.boot, VM: o.vm}}
	t.Cleanup(func() { prov.Close() })
	e.prov = prov
	if e.drv, err = prov.Driver(); err != nil {
		t.Fatal(err)
	}
	e.gw, err = engine.NewGateway(engine.GatewayOptions{Dir: filepath.Join(e.dir, "gateway"), Logf: t.Logf, Resolve: func(id string) (string, error) {
		p, err := e.drv.DiskPath(id)
		if errors.Is(err, cloud.ErrNotFound) {
			return "", os.ErrNotExist
		}
		return p, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if e.q, err = jobs.Open(o.redisURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.q.Close)
	e.logs = &logBuffer{}
	e.l = &Lifecycle{Client: e.c, Queue: e.q, Clouds: cloud.NewRegistry(prov), Gateway: engine.LocalGateway{G: e.gw},
		Log: slog.New(slog.NewTextHandler(e.logs, nil)), Tick: 50 * time.Millisecond, FollowFor: time.Second, Redeliver: time.Hour,
		SyncEvery: time.Hour, Lease: 3 * time.Second}
	e.l.init()
	e.ts = httptest.NewServer(e.l.Gate(e.gw))
	t.Cleanup(e.ts.Close)
	return e
}

// work starts an asynq server with n workers on the lifecycle's handlers.
func (e *env) work(n int) {
	e.t.Helper()
	mux := asynq.NewServeMux()
	e.l.Register(mux)
	e.srv = jobs.NewServer(e.q, n, e.l.Log)
	if err := e.srv.Start(mux); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if e.srv != nil {
			e.srv.Shutdown()
		}
	})
}

// stopWork shuts the in-process workers down.
func (e *env) stopWork() {
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv = nil
	}
}

// queued counts a step's tasks in the queue by state (pending, active,
// scheduled, retry), as asynq's Inspector reads them from Redis.
func (e *env) queued(stepID int) map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for q := range jobs.Queues {
		for state, list := range map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			"pending": e.q.Inspector.ListPendingTasks, "active": e.q.Inspector.ListActiveTasks,
			"scheduled": e.q.Inspector.ListScheduledTasks, "retry": e.q.Inspector.ListRetryTasks,
		} {
			tasks, err := list(q, asynq.PageSize(1000))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				continue
			}
			if err != nil {
				e.t.Fatalf("inspect %s %s: %v", q, state, err)
			}
			for _, ti := range tasks {
				var p StepPayload
				if json.Unmarshal(ti.Payload, &p) == nil && p.StepID == stepID {
					out[state]++
				}
			}
		}
	}
	return out
}

// image writes a disk image: a GPT with an ext4 partition and random data.
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
	buf := make([]byte, 2<<20)
	rand.Read(buf)
	f.WriteAt(buf, 3<<20)
	return p
}

// scribble changes a block of the named source disk.
func (e *env) scribble(name string, off int64) {
	e.t.Helper()
	f, err := os.OpenFile(e.sources[name], os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4096)
	rand.Read(b)
	f.WriteAt(b, off)
}

// agentPass does what the agent does with its sync commands: one engine
// sync per disk through the gateway the command names (the test server's
// URL stands for the control plane's own).
func (e *env) agentPass() []engine.SyncCommand {
	e.t.Helper()
	cmds, err := e.l.SyncCommands(e.ctx, e.agent.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.run(cmds)
	return cmds
}

// run carries out sync commands as the agent would.
func (e *env) run(cmds []engine.SyncCommand) {
	e.t.Helper()
	for _, c := range cmds {
		for _, d := range c.Disks {
			gw := d.Gateway
			if gw == "" {
				gw = e.ts.URL
			}
			s, err := engine.NewSyncer(engine.SyncOptions{Source: e.sources[d.Name], DiskID: d.DiskID, Gateway: gw, Credential: d.Credential, RetryFor: time.Second})
			if err != nil {
				e.t.Fatal(err)
			}
			if _, err := s.Run(e.ctx); err != nil {
				e.t.Fatalf("sync of %s: %v", d.Name, err)
			}
		}
	}
}

// waitFor polls cond with a deadline.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func (e *env) mig(id int) *ent.Migration { return e.c.Migration.GetX(e.sys, id) }

func (e *env) waitState(id int, want ferry.MigrationState) *ent.Migration {
	e.t.Helper()
	var m *ent.Migration
	waitFor(e.t, "migration state "+string(want), 30*time.Second, func() bool {
		m = e.mig(id)
		if m.State == ferry.MigrationFailed && want != ferry.MigrationFailed {
			e.t.Fatalf("migration %d failed: %s", id, m.FailureReason)
		}
		return m.State == want
	})
	return m
}

// start starts the host's migration and returns its id.
func (e *env) start() int {
	e.t.Helper()
	ids, err := e.l.Start(e.ctx, ferry.MigrationStart{HostIDs: []int{e.host.ID}, StartedBy: "test"})
	if err != nil || len(ids) != 1 {
		e.t.Fatalf("start: %v, %v", ids, err)
	}
	return ids[0]
}

// syncing takes a started migration to syncing: prepare, the first pass.
func (e *env) syncing(id int) *ent.Migration {
	e.t.Helper()
	e.waitState(id, ferry.MigrationInitialSync)
	e.agentPass()
	return e.waitState(id, ferry.MigrationSyncing)
}

func (e *env) steps(migID int, kind string) []*ent.Step {
	return e.c.Step.Query().Where(step.MigrationID(migID), step.Kind(kind)).Order(ent.Asc(step.FieldID)).AllX(e.sys)
}

// log returns a step's events as "phase: message" lines.
func (e *env) log(stepID int) []string {
	var out []string
	for _, ev := range e.c.StepEvent.Query().Where(stepevent.StepID(stepID)).Order(ent.Asc(stepevent.FieldID)).AllX(e.sys) {
		out = append(out, ev.Phase+": "+ev.Message)
	}
	return out
}

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// machines lists the local cloud's machine meta files: what is on its disk.
func (e *env) machines() []cloud.Machine {
	e.t.Helper()
	var all []cloud.Machine
	ents, _ := os.ReadDir(filepath.Join(e.drv.Dir(), "meta", "machines"))
	for _, en := range ents {
		id := strings.TrimSuffix(en.Name(), ".json")
		m, err := e.drv.Machine(e.ctx, id)
		if err != nil {
			e.t.Fatalf("machine %s on disk: %v", id, err)
		}
		all = append(all, m)
	}
	return all
}
