package migration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect/imagetest"
	"github.com/ferry-migrate/ferry/engine/cloud/local"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/internal/redistest"
)

// Two cutover tasks for the same step at once — what a reconciler without
// task ids sent every five minutes while a cutover ran — make exactly one
// cutover: the second finds the step held by the first (a live lease on its
// row) and does nothing, and the live machine is left alone. The database
// rows and the local cloud's own records say so.
func TestTwoCutoverTasksAtOnceCutOverOnce(t *testing.T) {
	sh := imagetest.Need(t, "sh", "dash")
	e := newEnv(t, envOpts{boot: &local.BootOptions{Command: []string{sh, "-c", "sleep 2; printf 'debian login: '", "{disk}"}, Timeout: time.Minute}})
	var once sync.Once
	sent := make(chan error, 2)
	e.l.BeforePhase = func(_ context.Context, kind, phase string, stepID int) {
		if kind != KindCutover || phase != "boot" { // the long phase: the boot
			return
		}
		once.Do(func() {
			st := e.c.Step.GetX(e.sys, stepID)
			go func() {
				for i, delay := range []time.Duration{0, 150 * time.Millisecond} {
					time.Sleep(delay) // the 150 ms of the original report
					task, opts, _ := NewStepTask(KindCutover, StepPayload{StepID: st.ID, Generation: st.Generation, MigrationID: st.MigrationID}, time.Time{})
					// Ids other than the step's own: duplicates the queue cannot fold.
					_, err := e.q.Client.Enqueue(task, append(opts, asynq.TaskID(fmt.Sprintf("dup-%d", i)))...)
					sent <- err
				}
			}()
		})
	}
	e.work(4)
	id := e.start()
	e.syncing(id)
	if _, err := e.l.TestLaunch(e.ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	e.waitState(id, ferry.MigrationCutoverReady)
	if err := e.l.RequestCutover(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the final pass's command", 20*time.Second, func() bool {
		cmds, _ := e.l.SyncCommands(e.ctx, e.agent.ID)
		e.run(cmds)
		return len(cmds) == 1 && cmds[0].Final
	})
	e.waitState(id, ferry.MigrationCutOver)
	for range 2 {
		if err := <-sent; err != nil {
			t.Fatalf("enqueue a duplicate: %v", err)
		}
	}
	waitFor(t, "the duplicates to have run", 20*time.Second, func() bool {
		for _, id := range []string{"dup-0", "dup-1"} {
			if _, err := e.q.Inspector.GetTaskInfo("critical", id); err == nil {
				return false
			}
		}
		return true
	})

	checkOneCutover := func() {
		t.Helper()
		m := e.mig(id)
		if m.State != ferry.MigrationCutOver || m.LastError != "" {
			t.Errorf("migration %s (%q), want cut_over", m.State, m.LastError)
		}
		ls := e.c.Launch.Query().Where(launch.HasMigrationWith(migration.ID(id)), launch.KindEQ(launch.KindCutover)).AllX(e.sys)
		if len(ls) != 1 || ls[0].Status != launch.StatusSucceeded || !strings.HasPrefix(ls[0].Message, "live: all checks passed") {
			t.Fatalf("cutover launches: %+v, want one, live", ls)
		}
		var live []cloud.Machine
		for _, mc := range e.machines() {
			if mc.Kind == cloud.LaunchCutover {
				live = append(live, mc)
			}
		}
		if len(live) != 1 || live[0].State != cloud.MachineLive || live[0].ID != ls[0].InstanceID {
			t.Fatalf("cutover machines on the local cloud: %+v, want the launch's one, live", live)
		}
		p, err := e.drv.DiskPath(live[0].Disks[0].DiskID)
		if err != nil || fileSHA(t, p) != fileSHA(t, e.sources["vda"]) {
			t.Errorf("the live machine's disk: %v (or it differs from the source)", err)
		}
	}
	checkOneCutover()
	for _, dup := range []string{"dup-0", "dup-1"} {
		if !strings.Contains(e.logs.String(), "task dropped\" step="+fmt.Sprint(e.steps(id, KindCutover)[0].ID)+" kind=cutover task="+dup) {
			t.Errorf("%s was not dropped for a held step; the lifecycle logged:\n%s", dup, e.logs.String())
		}
	}
	log := e.log(e.steps(id, KindCutover)[0].ID)
	count := func(s string) (n int) {
		for _, l := range log {
			if strings.Contains(l, s) {
				n++
			}
		}
		return n
	}
	if count("phase create started") != 1 || count("phase boot started") != 1 || count("resumed") != 0 {
		t.Errorf("the cutover's log shows more than one run of its launch:\n%s", strings.Join(log, "\n"))
	}
	// And a duplicate long after: nothing at all.
	st := e.steps(id, KindCutover)[0]
	task, opts, _ := NewStepTask(KindCutover, StepPayload{StepID: st.ID, Generation: st.Generation}, time.Time{})
	if _, err := e.q.Client.Enqueue(task, append(opts, asynq.TaskID("dup-late"))...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late duplicate to run", 20*time.Second, func() bool {
		_, err := e.q.Inspector.GetTaskInfo("critical", "dup-late")
		return err != nil
	})
	checkOneCutover()
}

// Reconcile called again and again while a step runs long (a launch whose
// boot takes its time) sends no second task for it: the step holds a live
// lease, and only the step's holder enqueues what follows. The real queue,
// on a real redis-server, is inspected with asynq's Inspector.
func TestReconcileNeverDuplicatesARunningStep(t *testing.T) {
	sh := imagetest.Need(t, "sh", "dash")
	dir := t.TempDir()
	gate := filepath.Join(dir, "boot-may-finish")
	e := newEnv(t, envOpts{redisURL: redistest.Start(t), boot: &local.BootOptions{
		Command: []string{sh, "-c", "while [ ! -e " + gate + " ]; do sleep 0.05; done; printf 'debian login: '", "{disk}"}, Timeout: time.Minute}})
	e.l.Lease = 600 * time.Millisecond // renewed every 100 ms: leases are live but short
	e.work(2)
	id := e.start()
	e.syncing(id)
	if _, err := e.l.TestLaunch(e.ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	var tl *ent.Step
	waitFor(t, "the test launch to boot", 20*time.Second, func() bool {
		tl = e.steps(id, KindTestLaunch)[0]
		return tl.Phase == "boot" && tl.LeaseOwner != ""
	})
	sync := e.steps(id, KindSync)[0]
	for i := range 5 {
		n, err := e.l.Reconcile(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.l.RecoverLeases(e.ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int{"active": 1}, e.queued(tl.ID)); diff != "" {
			t.Fatalf("reconcile %d (sent %d): the running test launch's tasks (-want +got):\n%s", i, n, diff)
		}
		if q := e.queued(sync.ID); q["pending"]+q["scheduled"]+q["active"]+q["retry"] > 1 {
			t.Fatalf("reconcile %d: the sync step has tasks %v", i, q)
		}
		time.Sleep(300 * time.Millisecond) // the step runs on while we look again
	}
	if got := e.steps(id, KindTestLaunch)[0]; got.Generation != tl.Generation || got.Phase != "boot" {
		t.Errorf("the running step was re-armed: generation %d → %d, phase %s", tl.Generation, got.Generation, got.Phase)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.waitState(id, ferry.MigrationCutoverReady)
	waitFor(t, "the finished launch's task to leave the queue", 10*time.Second, func() bool { return len(e.queued(tl.ID)) == 0 })
	if _, err := e.l.Reconcile(e.ctx); err != nil {
		t.Fatal(err)
	}
	if q := e.queued(tl.ID); len(q) != 0 {
		t.Errorf("a finished step got a task from the reconciler: %v", q)
	}
}

// A step whose task the queue lost (here deleted; in life, taken by a
// worker SIGKILLed before it claimed the step, or an enqueue lost after
// its commit) is re-armed by RecoverLeases once it has been due for a
// lease, under the next generation, with a task of that generation in the
// queue; a step whose task is merely waiting in a busy queue is left alone.
// No worker runs here: the real queue, on a real redis-server, is only
// inspected.
func TestRecoverLeasesRearmsAStepWhoseTaskWasLost(t *testing.T) {
	e := newEnv(t, envOpts{redisURL: redistest.Start(t)})
	id := e.start()
	prep := e.steps(id, KindPrepare)[0]
	if q := e.queued(prep.ID); q["pending"] != 1 {
		t.Fatalf("the new prepare step's tasks: %v", q)
	}
	later := time.Now().Add(2 * e.l.Lease)
	e.l.Now = func() time.Time { return later }
	if n, err := e.l.RecoverLeases(e.ctx); err != nil || n != 0 {
		t.Fatalf("recover with the task pending: %d, %v; want nothing re-armed", n, err)
	}
	if got := e.steps(id, KindPrepare)[0]; got.Generation != prep.Generation {
		t.Fatalf("a step with a pending task was re-armed: generation %d → %d", prep.Generation, got.Generation)
	}
	if err := e.q.Inspector.DeleteTask("default", TaskID(prep.ID, prep.Generation)); err != nil {
		t.Fatal(err)
	}
	if n, err := e.l.RecoverLeases(e.ctx); err != nil || n != 1 {
		t.Fatalf("recover with the task lost: %d, %v; want the step re-armed", n, err)
	}
	got := e.steps(id, KindPrepare)[0]
	if got.Generation != prep.Generation+1 || got.Status != prep.Status {
		t.Fatalf("after the re-arm: generation %d, status %s", got.Generation, got.Status)
	}
	if _, err := e.q.Inspector.GetTaskInfo("default", TaskID(got.ID, got.Generation)); err != nil {
		t.Errorf("no task of the new generation: %v", err)
	}
	if n, err := e.l.RecoverLeases(e.ctx); err != nil || n != 0 {
		t.Errorf("recover again: %d, %v; want nothing (the new task is pending)", n, err)
	}
}
