package migration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/local"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/jobs"
)

// The kill tests run workers as separate processes: the test binary
// re-executes itself with FERRY_TEST_ROLE=worker, so that SIGKILL hits a
// real process holding a real lease, with its SQLite connection, its Redis
// connections and the local cloud's lock file.
func TestMain(m *testing.M) {
	vmtest.MaybeRelay() // the launched copies' agent phones home through it
	if os.Getenv("FERRY_TEST_ROLE") == "worker" {
		os.Exit(roleWorker())
	}
	os.Exit(m.Run())
}

// roleWorker is a migration worker: the lifecycle's handlers on two asynq
// workers, the reconciler at start and the lease recovery every 200 ms. With
// FERRY_TEST_PAUSE=kind/phase it stops inside that phase (after claiming the
// step and persisting the phase) and says so, until it is killed.
func roleWorker() int {
	ctx := context.Background()
	db, err := database.Open(ctx, os.Getenv("FERRY_TEST_DB"), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	q, err := jobs.Open(os.Getenv("FERRY_TEST_REDIS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	prov := &local.Provider{Dir: os.Getenv("FERRY_TEST_CLOUD")}
	drv, err := prov.Driver()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The gateway's state as the control plane's gateway left it in its
	// directory (this process reads it; the test serves the data path).
	gw, err := engine.NewGateway(engine.GatewayOptions{Dir: os.Getenv("FERRY_TEST_GATEWAY"), Resolve: func(id string) (string, error) {
		p, err := drv.DiskPath(id)
		if errors.Is(err, cloud.ErrNotFound) {
			return "", os.ErrNotExist
		}
		return p, err
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l := &Lifecycle{Client: db.Client, Queue: q, Log: log, Lease: 2 * time.Second, SyncEvery: time.Hour, Tick: 50 * time.Millisecond,
		Clouds: cloud.NewRegistry(prov), Gateway: engine.LocalGateway{G: gw}}
	if pause := os.Getenv("FERRY_TEST_PAUSE"); pause != "" {
		l.BeforePhase = func(ctx context.Context, kind, phase string, _ int) {
			if kind+"/"+phase == pause {
				fmt.Println("PAUSED", pause)
				select {} // in the phase, holding the step, until SIGKILL
			}
		}
	}
	mux := asynq.NewServeMux()
	l.Register(mux)
	srv := jobs.NewServer(q, 2, log)
	if err := srv.Start(mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := l.Reconcile(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", err)
	}
	fmt.Println("READY")
	for {
		if _, err := l.RecoverLeases(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "recover:", err)
		}
		time.Sleep(200 * time.Millisecond) // the app's loop, shortened
	}
}

// worker is a running worker process.
type worker struct {
	cmd *exec.Cmd
	out chan string
	log *logBuffer
}

func (e *env) startWorker(t *testing.T, pause string) *worker {
	t.Helper()
	w := &worker{cmd: exec.Command(os.Args[0], "-test.run=^$"), out: make(chan string, 16), log: &logBuffer{}}
	w.cmd.Env = append(os.Environ(), "FERRY_TEST_ROLE=worker", "FERRY_TEST_DB="+filepath.Join(e.dir, "ferry.db"),
		"FERRY_TEST_REDIS="+e.redisURL, "FERRY_TEST_CLOUD="+filepath.Join(e.dir, "cloud"),
		"FERRY_TEST_GATEWAY="+filepath.Join(e.dir, "gateway"), "FERRY_TEST_PAUSE="+pause)
	w.cmd.Stderr = w.log
	stdout, _ := w.cmd.StdoutPipe()
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.out <- sc.Text()
		}
		close(w.out)
	}()
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	return w
}

// expect waits for the worker to print line.
func (w *worker) expect(t *testing.T, line string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case got, ok := <-w.out:
			if !ok {
				t.Fatalf("the worker exited before printing %q:\n%s", line, w.log.String())
			}
			if got == line {
				return
			}
		case <-deadline:
			t.Fatalf("the worker did not print %q within a minute:\n%s", line, w.log.String())
		}
	}
}

func (w *worker) kill(t *testing.T) {
	t.Helper()
	w.cmd.Process.Signal(syscall.SIGKILL)
	w.cmd.Wait()
}

// killInEveryPhase SIGKILLs a worker inside each phase of the step kind in
// turn (between runs what the outside world does then: the agent's final
// delta); the next worker must resume the step in that phase (its log says
// so) and never start over at an earlier one. A last worker finishes it.
func (e *env) killInEveryPhase(t *testing.T, migID int, kind string, skip []string, between func(phase string), finished func() bool) {
	t.Helper()
	var phases []string
	for _, ph := range Phases(kind) {
		if !slices.Contains(skip, ph) {
			phases = append(phases, ph)
		}
	}
	for _, ph := range phases {
		w := e.startWorker(t, kind+"/"+ph)
		w.expect(t, "PAUSED "+kind+"/"+ph)
		w.kill(t)
		if between != nil {
			between(ph)
		}
	}
	w := e.startWorker(t, "")
	w.expect(t, "READY")
	waitFor(t, kind+" to finish after the kills", 60*time.Second, func() bool {
		st := e.steps(migID, kind)
		return finished() && len(st) == 1 && st[0].Status == step.StatusSucceeded
	})
	w.cmd.Process.Signal(syscall.SIGTERM)
	w.cmd.Wait()

	st := e.steps(migID, kind)
	if len(st) != 1 || st[0].Status != step.StatusSucceeded {
		t.Fatalf("%s steps: %+v", kind, st)
	}
	log := e.log(st[0].ID)
	t.Logf("%s step's log after a kill in each of its phases:\n  %s", kind, strings.Join(log, "\n  "))
	last := -1
	for _, line := range log {
		ph, msg, _ := strings.Cut(line, ": ")
		i := slices.Index(phases, ph)
		if strings.HasPrefix(msg, "phase ") && strings.HasSuffix(msg, " started") {
			if i < last {
				t.Errorf("%s: phase %s started again after phase %s:\n%s", kind, ph, phases[last], strings.Join(log, "\n"))
			}
			last = i
		}
	}
	for _, ph := range phases {
		if !slices.Contains(log, ph+": resumed in phase "+ph+": the worker that held the step stopped") {
			t.Errorf("%s: no worker resumed the step in phase %s:\n%s", kind, ph, strings.Join(log, "\n"))
		}
	}
}

// SIGKILL of the worker in every phase of a launch: the next worker resumes
// at that phase, and the launch of the two-disk host ends as one machine
// with both disks, made once. The same for every phase of the cutover (its
// final delta included) and of the rollback that discards it.
func TestWorkerKilledInEveryPhaseResumesThere(t *testing.T) {
	e := newEnv(t, envOpts{redisURL: redistest.Start(t), disks: []string{"vda", "vdb"}})
	e.work(2)
	id := e.start()
	e.syncing(id)
	// From here on, only worker processes run the steps; this process lets
	// go of the local cloud they need.
	e.stopWork()
	e.prov.Close()

	lid, err := e.l.TestLaunch(e.ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.killInEveryPhase(t, id, KindTestLaunch, nil, nil, func() bool { return e.mig(id).State == ferry.MigrationCutoverReady })
	l := e.c.Launch.GetX(e.sys, lid)
	if l.Status != launch.StatusSucceeded || len(l.Instances) != 2 || l.Instances[0].InstanceID != l.InstanceID || l.Instances[1].InstanceID != l.InstanceID {
		t.Fatalf("launch after the kills: %+v", l)
	}
	drv, err := local.New(filepath.Join(e.dir, "cloud"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := drv.ListMachines(e.ctx, fmt.Sprint(id))
	if len(ms) != 1 || ms[0].ID != l.InstanceID || len(ms[0].Disks) != 2 || ms[0].State != cloud.MachineRunning {
		t.Fatalf("machines of the migration after the kills: %+v; want the launch's one, with both disks", ms)
	}
	for i, d := range ms[0].Disks {
		p, err := drv.DiskPath(d.DiskID)
		if err != nil || fileSHA(t, p) != fileSHA(t, e.sources[[]string{"vda", "vdb"}[i]]) {
			t.Errorf("machine disk %d: %v (or it differs from its source)", i, err)
		}
	}
	drv.Close()

	// The cutover, killed in each of its phases; the agent sends the final
	// delta (to the gateway this process serves) once it was asked for.
	e.scribble("vdb", 7<<20)
	if err := e.l.RequestCutover(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.killInEveryPhase(t, id, KindCutover, []string{"approval"}, func(ph string) {
		if ph != "final_sync" {
			return
		}
		cmds := e.agentPass()
		if len(cmds) != 1 || !cmds[0].Final || len(cmds[0].Disks) != 2 {
			t.Fatalf("final delta commands: %+v", cmds)
		}
	}, func() bool { return e.mig(id).State == ferry.MigrationCutOver })
	live := e.c.Launch.Query().Where(launch.KindEQ(launch.KindCutover)).OnlyX(e.sys)
	drv, err = local.New(filepath.Join(e.dir, "cloud"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, _ = drv.ListMachines(e.ctx, fmt.Sprint(id))
	if len(ms) != 2 || ms[0].State != cloud.MachineTerminated || ms[1].State != cloud.MachineLive || ms[1].ID != live.InstanceID || len(ms[1].Disks) != 2 {
		t.Fatalf("machines after the cutover: %+v; want the test one terminated, the cutover's live with both disks", ms)
	}
	for i, d := range ms[1].Disks {
		p, err := drv.DiskPath(d.DiskID)
		if err != nil || fileSHA(t, p) != fileSHA(t, e.sources[[]string{"vda", "vdb"}[i]]) {
			t.Errorf("live disk %d: %v (or it lacks the final delta)", i, err)
		}
	}
	drv.Close()

	if err := e.l.Rollback(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.killInEveryPhase(t, id, KindRollback, nil, nil, func() bool { return e.mig(id).State == ferry.MigrationRolledBack })
	drv, err = local.New(filepath.Join(e.dir, "cloud"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	ms, _ = drv.ListMachines(e.ctx, fmt.Sprint(id))
	if len(ms) != 2 || ms[1].State != cloud.MachineRolledBack {
		t.Fatalf("machines after the rollback: %+v", ms)
	}
	for _, m := range ms {
		for _, d := range m.Disks {
			if d.DiskID != "" {
				t.Errorf("discarded machine %s still has disk %s", m.ID, d.DiskID)
			}
		}
	}
}
