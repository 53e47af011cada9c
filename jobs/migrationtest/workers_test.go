package migrationtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// TestMigrationsOnAnyWorker: `serve --workers 0` on a real Redis with two
// `ferry worker`s on its data directory (issue 11). A migration on the local
// cloud runs on the node that holds the cloud's directory and the gateway
// (serve, through its node queues) instead of waiting for a worker that
// cannot open the driver; a migration to Alibaba runs on the workers, one of
// which is SIGKILLed mid-sync; both end byte-identical.
func TestMigrationsOnAnyWorker(t *testing.T) {
	const size = 48 << 20
	redis := redistest.Start(t)
	env := []string{"FERRY_REDIS_URL=" + redis, "FERRY_STEP_LEASE=4s"}
	w := newWorldWith(t, []string{"--workers", "0"}, env, size, [2]int64{4 << 20, 16 << 20}, [2]int64{30 << 20, 4 << 20})
	workers := make([]*proc, 2)
	for i := range workers {
		workers[i] = start(t, w.bin, env, "worker", "--data-dir", w.data, "--concurrency", "2", "--public-url", w.base)
	}
	node, err := os.ReadFile(filepath.Join(w.data, "cloud", "node"))
	if err != nil {
		t.Fatalf("serve holds the local cloud but wrote no node name: %v", err)
	}
	waitFor(t, "serve to serve its node's queues", 30*time.Second, func() bool {
		return strings.Contains(w.serve.out.String(), "serving this node's migration queues only")
	})
	admin := w.admin
	srcSum := sha(t, w.img)

	// The local cloud: every step on serve's node queues.
	d := admin.mustGQL(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id } }`, map[string]any{"h": []string{w.hostID}})
	local := dig(d, "startMigration", 0, "id").(string)
	var m map[string]any
	waitFor(t, "the local migration's sync", 120*time.Second, func() bool {
		m = w.migration(t, admin, local)
		if m["state"] == "failed" {
			t.Fatalf("local migration failed: %v", m["failureReason"])
		}
		return m["state"] == "syncing" && m["percent"] == float64(100)
	})
	target := filepath.Join(w.data, "cloud", "disks", dig(m, "disks", 0, "targetDiskID").(string)+".img")
	if sha(t, target) != srcSum {
		t.Fatal("the local target differs from the source")
	}
	admin.mustGQL(`mutation($id: ID!) { testLaunch(migrationId: $id) { id } }`, map[string]any{"id": local})
	waitFor(t, "the local test launch", 120*time.Second, func() bool {
		m = w.migration(t, admin, local)
		if m["state"] == "failed" {
			t.Fatalf("local migration failed: %v", m["failureReason"])
		}
		return m["state"] == "cutover_ready"
	})
	admin.mustGQL(`mutation($id: ID!) { rollback(migrationId: $id) { id } }`, map[string]any{"id": local})
	waitFor(t, "the local rollback", 120*time.Second, func() bool {
		return w.migration(t, admin, local)["state"] == "rolled_back"
	})
	for i, wk := range workers {
		if strings.Contains(wk.out.String(), "owned by another process") && strings.Contains(wk.out.String(), "step") &&
			strings.Contains(wk.out.String(), "task failed") {
			t.Errorf("worker %d was handed a step of the local cloud it cannot open:\n%s", i, tail(wk.out.String(), 2000))
		}
	}

	// Alibaba: the steps run on the workers; one dies mid-sync.
	ecsDir := t.TempDir()
	ecs := startECSIn(t, w, ecsDir)
	acct := ecs.account(t, admin)
	// 8 Mbit/s: the ≈ 20 MiB the source holds take some 20 s to send, so
	// the kill below lands in the middle of the pass.
	d = admin.mustGQL(`mutation($h: [ID!]!, $a: ID) { startMigration(hostIds: $h, cloudAccountId: $a, rateLimit: "8Mbps") { id } }`,
		map[string]any{"h": []string{w.hostID}, "a": acct})
	ali := dig(d, "startMigration", 0, "id").(string)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the Alibaba migration as last read: %v", m)
			logs, _ := filepath.Glob(filepath.Join(ecsDir, "*", "*", "console.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, tail(string(b), 2000))
			}
			db, err := database.Open(context.Background(), filepath.Join(w.data, "ferry.db"), false)
			if err != nil {
				return
			}
			defer db.Close()
			for _, s := range db.Client.Step.Query().AllX(viewer.SystemContext(context.Background())) {
				t.Logf("step %d %s/%s %s gen %d owner %q attempts %d error %q", s.ID, s.Kind, s.Phase, s.Status, s.Generation, s.LeaseOwner, s.Attempts, s.LastError)
			}
		}
	})
	// SIGKILL the worker holding the migration's sync step (its follower,
	// mid-pass): the other takes it over once its lease (4 s here) runs out.
	db, err := database.Open(context.Background(), filepath.Join(w.data, "ferry.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	aliID, _ := strconv.Atoi(ali)
	victim := -1
	waitFor(t, "a worker to follow the Alibaba migration's sync mid-pass", 120*time.Second, func() bool {
		if p, _ := w.migration(t, admin, ali)["percent"].(float64); p <= 0 || p >= 90 {
			return false
		}
		steps := db.Client.Step.Query().Where(step.MigrationID(aliID), step.StatusEQ(step.StatusRunning), step.Kind("sync")).
			AllX(viewer.SystemContext(context.Background()))
		for _, s := range steps {
			for i, wk := range workers {
				if strings.Contains(s.LeaseOwner, "/"+strconv.Itoa(wk.cmd.Process.Pid)+"/") {
					victim = i
					t.Logf("killing worker %d, which holds step %d (%s/%s)", i, s.ID, s.Kind, s.Phase)
					return true
				}
			}
		}
		return false
	})
	workers[victim].cmd.Process.Signal(syscall.SIGKILL)
	workers[victim].cmd.Wait()
	t.Logf("killed it at %v %% of the initial sync", w.migration(t, admin, ali)["percent"])
	waitFor(t, "the Alibaba migration's sync on the surviving worker", 240*time.Second, func() bool {
		m = w.migration(t, admin, ali)
		if m["state"] == "failed" {
			t.Fatalf("Alibaba migration failed: %v", m["failureReason"])
		}
		return m["state"] == "syncing" && m["percent"] == float64(100) && m["latestRecoveryPoint"] != nil
	})
	disk := ecs.diskNamed(t, "ferry-"+dig(m, "disks", 0, "targetDiskID").(string))
	if got := ecs.diskSum(t, disk, size); got != srcSum {
		t.Fatalf("the ECS target disk is %s, the source %s", got, srcSum)
	}
	if strings.Contains(w.serve.out.String(), "alibaba CreateDisk") {
		t.Error("serve ran an Alibaba step; its node queues are for the local cloud only")
	}
	t.Logf("local cloud node %s; the surviving worker's log:\n%s", strings.TrimSpace(string(node)), tail(workers[1-victim].out.String(), 1500))
}
