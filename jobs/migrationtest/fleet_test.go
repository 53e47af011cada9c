package migrationtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/internal/viewer"
	jobmigration "github.com/ferry-migrate/ferry/jobs/migration"
)

// fleet is a world with more hosts: one `ferry agent run` each, all on this
// machine, told apart by --hostname and --no-hardware-ids (they share every
// hardware id, which would merge them into one host).
type fleet struct {
	*world
	imgs  map[string]string // host id → its disk image
	sizes map[string]int64
}

// addAgents registers n more agents, each with its own image of 3–5 MiB
// times scale (different sizes, data at different offsets); runArgs go to
// each `agent run`.
func (w *world) addAgents(t testing.TB, n int, scale int64, runArgs ...string) *fleet {
	t.Helper()
	f := &fleet{world: w, imgs: map[string]string{w.hostID: w.img}, sizes: map[string]int64{w.hostID: w.size}}
	dir := t.TempDir()
	tok := w.admin.mustGQL(`mutation($n: Int) { createRegistrationToken(input: {name: "fleet", maxUses: $n}) { token } }`, map[string]any{"n": n})
	token := dig(tok, "createRegistrationToken", "token").(string)
	byName := map[string]string{}
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("src%02d", i)
		size := int64(3+i%3) << 20 * scale
		img := filepath.Join(dir, name+".img")
		makeImage(t, img, size, [2]int64{1<<20 + (64<<10+int64(i)*8<<10)*scale, (256<<10 + int64(i)*16<<10) * scale},
			[2]int64{size - (1<<20+int64(i)*4<<10)*scale, 128 << 10 * scale})
		byName[name] = img
		wg.Add(1)
		go func() { // registrations in parallel: each collects an inventory first
			defer wg.Done()
			out, err := exec.Command(w.bin, "agent", "register", "--server", w.base, "--token", token, "--state", filepath.Join(dir, name),
				"--hostname", name, "--no-hardware-ids").CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("agent register %s: %v\n%s", name, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for name, img := range byName {
		start(t, w.bin, nil, append([]string{"agent", "run", "--state", filepath.Join(dir, name), "--disk-source", "vda=" + img, "--sample-every", "2s",
			"--hostname", name, "--no-hardware-ids"}, runArgs...)...)
	}
	// Each first inventory is an ingest; under load a few hundred ms each.
	waitFor(t, fmt.Sprintf("%d hosts of their own", n+1), max(90*time.Second, time.Duration(n)*3*time.Second), func() bool {
		d := w.admin.mustGQL(`{ hosts(first: 1000) { edges { node { id name disks { name sizeBytes } } } } }`, nil)
		for _, e := range dig(d, "hosts", "edges").([]any) {
			name, _ := dig(e, "node", "name").(string)
			if img, ok := byName[name]; ok && dig(e, "node", "disks", 0, "name") == "vda" {
				st, _ := os.Stat(img)
				if dig(e, "node", "disks", 0, "sizeBytes") == float64(st.Size()) {
					id := dig(e, "node", "id").(string)
					f.imgs[id], f.sizes[id] = img, st.Size()
				}
			}
		}
		return len(f.imgs) == n+1
	})
	return f
}

var (
	takeoverRE = regexp.MustCompile(`^` + jobmigration.ClaimPrefix + `(\S+) at generation (\d+); took over from (\S+), whose lease ran out at (\S+)$`)
	rearmRE    = regexp.MustCompile(`^` + jobmigration.RearmPrefix + `generation (\d+): released from (\S+) \(dead: (true|false)\), whose lease ran out at (\S+)$`)
)

// TestTwentyMigrationsOnAnyWorker is issue 11's any-worker test at its
// size: real redis-server, `serve --workers 0`, two `ferry worker`s, ten
// migrations on the local cloud (on serve's node queues: serve holds the
// cloud's directory) and ten on the ECS emulator (on the workers, through
// ten gateway processes), one worker SIGKILLed mid-sync. Every target ends
// byte-identical to its source, the target read where the database says it
// is; and the database shows no two workers ever ran a step at once: a step
// changes hands only by release or, after the kill, by a takeover or
// re-arm logged with the holder it replaced, every one of them the killed
// worker, after its lease ran out or once its process was gone.
func TestTwentyMigrationsOnAnyWorker(t *testing.T) {
	const perCloud = 10
	redis := redistest.Start(t)
	env := []string{"FERRY_REDIS_URL=" + redis, "FERRY_STEP_LEASE=4s"}
	w := newWorldWith(t, []string{"--workers", "0"}, env, 4<<20, [2]int64{1<<20 + 64<<10, 384 << 10}, [2]int64{2 << 20, 256 << 10})
	f := w.addAgents(t, 2*perCloud-1, 1)
	workers := make([]*proc, 2)
	for i := range workers {
		workers[i] = start(t, w.bin, env, "worker", "--data-dir", w.data, "--concurrency", "16", "--public-url", w.base)
	}
	admin := w.admin
	ids := make([]string, 0, len(f.imgs))
	for id := range f.imgs {
		ids = append(ids, id)
	}
	sums := map[string]string{}
	for id, img := range f.imgs {
		sums[id] = sha(t, img)
	}
	ecsDir := t.TempDir()
	ecs := startECSIn(t, w, ecsDir)
	acct := ecs.account(t, admin)

	started := time.Now()
	t.Logf("%d hosts, two workers and the emulator ready", len(ids))
	d := admin.mustGQL(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id } }`, map[string]any{"h": ids[:perCloud]})
	var local, ali []string
	for _, m := range dig(d, "startMigration").([]any) {
		local = append(local, dig(m, "id").(string))
	}
	// 1 Mbit/s each: the 400–700 KiB of data on a disk take some 4 s to
	// send, so the kill below lands while passes run.
	d = admin.mustGQL(`mutation($h: [ID!]!, $a: ID) { startMigration(hostIds: $h, cloudAccountId: $a, rateLimit: "1Mbps") { id } }`,
		map[string]any{"h": ids[perCloud:], "a": acct})
	for _, m := range dig(d, "startMigration").([]any) {
		ali = append(ali, dig(m, "id").(string))
	}
	if len(local) != perCloud || len(ali) != perCloud {
		t.Fatalf("started %d local and %d Alibaba migrations", len(local), len(ali))
	}

	db, err := database.Open(context.Background(), filepath.Join(w.data, "ferry.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sys := viewer.SystemContext(context.Background())
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range db.Client.Step.Query().AllX(sys) {
				t.Logf("step %d mig %d %s/%s %s gen %d owner %q attempts %d error %q", s.ID, s.MigrationID, s.Kind, s.Phase, s.Status, s.Generation, s.LeaseOwner, s.Attempts, s.LastError)
			}
		}
	})
	aliIDs := make([]int, len(ali))
	for i, id := range ali {
		aliIDs[i], _ = strconv.Atoi(id)
	}

	// SIGKILL, while passes to ECS are under way, the worker holding the
	// most steps of the Alibaba migrations.
	victim, held := -1, map[int]bool{}
	waitFor(t, "workers to hold Alibaba steps while passes run", 180*time.Second, func() bool {
		if db.Client.Step.Query().Where(step.MigrationIDIn(aliIDs...), step.Kind("sync"), step.Phase("follow")).CountX(sys) < 2 {
			return false
		}
		count := make([]int, len(workers))
		for _, s := range db.Client.Step.Query().Where(step.MigrationIDIn(aliIDs...), step.StatusEQ(step.StatusRunning)).AllX(sys) {
			for i, wk := range workers {
				if strings.Contains(s.LeaseOwner, "/"+strconv.Itoa(wk.cmd.Process.Pid)+"/") {
					count[i]++
				}
			}
		}
		for i, c := range count {
			if c > 0 && (victim < 0 || c > count[victim]) {
				victim = i
			}
		}
		return victim >= 0
	})
	pid := strconv.Itoa(workers[victim].cmd.Process.Pid)
	workers[victim].cmd.Process.Signal(syscall.SIGKILL)
	workers[victim].cmd.Wait()
	for _, s := range db.Client.Step.Query().Where(step.LeaseOwnerContains("/" + pid + "/")).AllX(sys) {
		held[s.ID] = true
	}
	t.Logf("killed worker %d (pid %s) after %s, holding steps %v", victim, pid, time.Since(started).Round(time.Millisecond), keysOf(held))

	all := append(append([]string(nil), local...), ali...)
	waitFor(t, "all twenty initial syncs with a recovery point", 300*time.Second, func() bool {
		for _, id := range all {
			m := w.migration(t, admin, id)
			if m["state"] == "failed" {
				t.Fatalf("migration %s failed: %v %v", id, m["failureReason"], m["lastError"])
			}
			if m["state"] != "syncing" || m["percent"] != float64(100) || m["latestRecoveryPoint"] == nil {
				return false
			}
		}
		return true
	})
	t.Logf("twenty initial syncs (10 local, 10 Alibaba at 1 Mbit/s, one worker killed) in %s", time.Since(started).Round(time.Millisecond))

	// Byte-identical, the target found where the database says it is.
	for _, id := range all {
		n, _ := strconv.Atoi(id)
		m := db.Client.Migration.Query().Where(migration.ID(n)).WithCloudAccount().OnlyX(sys)
		host := strconv.Itoa(m.HostID)
		if len(m.Disks) != 1 || m.Disks[0].TargetDiskID == "" {
			t.Fatalf("migration %s disks %+v", id, m.Disks)
		}
		var got string
		if m.Edges.CloudAccount == nil {
			got = sha(t, filepath.Join(w.data, "cloud", "disks", m.Disks[0].TargetDiskID+".img"))
		} else {
			got = ecs.diskSum(t, ecs.diskNamed(t, "ferry-"+m.Disks[0].TargetDiskID), f.sizes[host])
		}
		if got != sums[host] {
			t.Errorf("migration %s (host %s, provider account %v): target %s, source %s", id, host, m.Edges.CloudAccount != nil, got, sums[host])
		}
	}

	// No two workers on one step: the compare-and-set claim requires the
	// holder it read, so a step changes hands without a release only
	// through a logged takeover or re-arm. Each of those must have replaced
	// the killed worker, after its lease ran out (or once it was gone).
	handovers := map[int]int{}
	for _, e := range db.Client.StepEvent.Query().Where(stepevent.Or(stepevent.MessageHasPrefix(jobmigration.ClaimPrefix),
		stepevent.MessageHasPrefix(jobmigration.RearmPrefix))).Order(ent.Asc(stepevent.FieldID)).AllX(sys) {
		var prev, until string
		dead := false
		if m := takeoverRE.FindStringSubmatch(e.Message); m != nil {
			prev, until = m[3], m[4]
		} else if m := rearmRE.FindStringSubmatch(e.Message); m != nil {
			prev, dead, until = m[2], m[3] == "true", m[4]
		} else {
			t.Errorf("step %d: unparsed handover %q", e.StepID, e.Message)
			continue
		}
		ran, err := time.Parse(time.RFC3339Nano, until)
		if err != nil {
			t.Errorf("step %d: %q: %v", e.StepID, e.Message, err)
			continue
		}
		if !strings.Contains(prev, "/"+pid+"/") {
			t.Errorf("step %d was taken from %s, a live process (only worker pid %s died): %q", e.StepID, prev, pid, e.Message)
		}
		if !dead && !e.CreatedAt.After(ran) {
			t.Errorf("step %d changed hands at %s, before its holder's lease ran out at %s: %q", e.StepID, e.CreatedAt, ran, e.Message)
		}
		if len(handovers) == 0 {
			t.Logf("a handover as logged: %q", e.Message)
		}
		handovers[e.StepID]++
	}
	for id := range held {
		s := db.Client.Step.GetX(sys, id)
		if handovers[id] == 0 && !(s.Status == step.StatusSucceeded && s.FinishedAt != nil) {
			t.Errorf("step %d (%s) was held by the killed worker and never handed over: %s", id, s.Kind, s.Status)
		}
	}
	if len(handovers) == 0 {
		t.Error("no step was handed over from the killed worker")
	}
	for _, s := range db.Client.Step.Query().Where(step.StatusEQ(step.StatusFailed)).AllX(sys) {
		t.Errorf("step %d (%s/%s) of migration %d failed: %s", s.ID, s.Kind, s.Phase, s.MigrationID, s.LastError)
	}
	for i, wk := range workers {
		if out := wk.out.String(); strings.Contains(out, "owned by another process") && strings.Contains(out, "task failed") {
			t.Errorf("worker %d was handed a step of the local cloud it cannot open:\n%s", i, tail(out, 2000))
		}
	}
	if strings.Contains(w.serve.out.String(), "alibaba CreateDisk") {
		t.Error("serve ran an Alibaba step; its node queues are for the local cloud only")
	}
	calls := 0
	for _, n := range ecs.srv.Calls() {
		calls += n
	}
	t.Logf("handovers from the killed worker, by step: %v; emulator calls: %d", handovers, calls)
}

func keysOf(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
