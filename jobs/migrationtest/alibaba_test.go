package migrationtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// emulatedECS is the ECS emulator for a world: its instances run the
// world's ferry binary (a migration's gateway, a launch's repair).
type emulatedECS struct {
	srv          *ecsemu.Server
	url, vswitch string
}

func startECS(t testing.TB, w *world) *emulatedECS {
	t.Helper()
	return startECSIn(t, w, t.TempDir())
}

// startECSIn is startECS keeping the emulator's state in dir.
func startECSIn(t testing.TB, w *world, dir string) *emulatedECS {
	t.Helper()
	return startECSWith(t, w, ecsemu.Options{Dir: dir})
}

// startECSWith is startECS with options (Dir, Quota); the instances run
// the world's binary and are not booted.
func startECSWith(t testing.TB, w *world, opt ecsemu.Options) *emulatedECS {
	t.Helper()
	opt.Path, opt.Logf, opt.VM = []string{filepath.Dir(w.bin)}, func(string, ...any) {}, ecsemu.VMOptions{NoBoot: true}
	srv, err := ecsemu.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	c, _ := alibaba.New(alibaba.Config{Region: "cn-hangzhou", Endpoint: strings.TrimPrefix(hs.URL, "http://"), Scheme: "http",
		Credentials: alibaba.Credentials{AccessKeyID: ecsemu.DefaultKeyID, AccessKeySecret: ecsemu.DefaultKeySecret}})
	sws, err := c.VSwitches(context.Background(), "")
	if err != nil || len(sws) == 0 {
		t.Fatalf("vSwitches: %v, %v", sws, err)
	}
	return &emulatedECS{srv: srv, url: hs.URL, vswitch: sws[0].ID}
}

// account creates the tenant's Alibaba account pointing at the emulator.
func (e *emulatedECS) account(t testing.TB, c *client) string {
	t.Helper()
	d := c.mustGQL(`mutation($s: Map) { createCloudAccount(input: {name: "hangzhou", provider: alibaba, region: "cn-hangzhou",
		accessKeyID: "`+ecsemu.DefaultKeyID+`", secret: "`+ecsemu.DefaultKeySecret+`", settings: $s}) { id } }`,
		map[string]any{"s": map[string]any{"endpoint": e.url, "vswitch_id": e.vswitch, "source_cidrs": "127.0.0.0/8"}})
	return dig(d, "createCloudAccount", "id").(string)
}

// diskSum is the SHA-256 of the first n bytes of the ECS disk named name.
func (e *emulatedECS) diskSum(t testing.TB, ecsID string, n int64) string {
	t.Helper()
	p, err := e.srv.DiskPath(ecsID)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, n)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (e *emulatedECS) diskNamed(t testing.TB, name string) string {
	t.Helper()
	for _, d := range e.srv.Inventory().Disks {
		if d.Name == name {
			return d.ID
		}
	}
	t.Fatalf("no ECS disk named %s in %v", name, e.srv.Inventory())
	return ""
}

// TestAlibabaMigrationLifecycle is a migration to Alibaba Cloud from
// startMigration to the cutover and the rollback, through `ferry serve`
// and a real agent: the provider calls the emulator through the real SDK;
// the migration's gateway is a real `ferry gateway` on an emulated instance
// that registered upward with its one-time ticket; the agent replicates
// into the ECS disk through it, pinning its certificate; each pass ends
// with a snapshot; a launch goes through the repair instance, an image and
// RunInstances.
func TestAlibabaMigrationLifecycle(t *testing.T) {
	const size = 48 << 20
	w := newWorld(t, size, [2]int64{4 << 20, 16 << 20}, [2]int64{30 << 20, 4 << 20})
	ecs := startECS(t, w)
	admin := w.admin
	acct := ecs.account(t, admin)
	chk := admin.mustGQL(`mutation($id: ID!) { checkCloudAccount(id: $id) { ok checks { name ok message } } }`, map[string]any{"id": acct})
	if dig(chk, "checkCloudAccount", "ok") != true {
		t.Fatalf("account check: %v", chk)
	}
	srcSum := sha(t, w.img)
	d := admin.mustGQL(`mutation($h: [ID!]!, $a: ID) { startMigration(hostIds: $h, cloudAccountId: $a) { id state } }`,
		map[string]any{"h": []string{w.hostID}, "a": acct})
	migID := dig(d, "startMigration", 0, "id").(string)
	var m map[string]any
	started := time.Now()
	waitFor(t, "the initial sync to Alibaba", 180*time.Second, func() bool {
		m = w.migration(t, admin, migID)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v %v", m["failureReason"], m["lastError"])
		}
		return m["state"] == "syncing" && m["percent"] == float64(100) && m["latestRecoveryPoint"] != nil
	})
	t.Logf("initial sync through the ECS gateway: %s", time.Since(started).Round(time.Millisecond))
	target := ecs.diskNamed(t, "ferry-"+dig(m, "disks", 0, "targetDiskID").(string))
	if got := ecs.diskSum(t, target, size); got != srcSum {
		t.Fatalf("the ECS target disk is %s, the source %s", got, srcSum)
	}
	if !strings.HasPrefix(dig(m, "latestRecoveryPoint", "externalID").(string), "s-") {
		t.Errorf("recovery point %v: want an ECS snapshot", dig(m, "latestRecoveryPoint"))
	}

	admin.mustGQL(`mutation($id: ID!) { testLaunch(migrationId: $id) { id } }`, map[string]any{"id": migID})
	waitFor(t, "the test launch on ECS", 180*time.Second, func() bool {
		m = w.migration(t, admin, migID)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v", m["failureReason"])
		}
		return m["state"] == "cutover_ready"
	})

	// New writes on the source, then the cutover: the final delta goes
	// through the gateway and the live instance holds it.
	src, err := os.OpenFile(w.img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{10 << 20, 20<<20 + 4096, 40 << 20} {
		b := make([]byte, 4096)
		rand.Read(b)
		src.WriteAt(b, off)
	}
	src.Close()
	newSum := sha(t, w.img)
	admin.mustGQL(`mutation($id: ID!) { cutover(migrationId: $id) { id } }`, map[string]any{"id": migID})
	waitFor(t, "the cutover to ECS", 240*time.Second, func() bool {
		m = w.migration(t, admin, migID)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v", m["failureReason"])
		}
		return m["state"] == "cut_over"
	})
	if got := ecs.diskSum(t, target, size); got != newSum {
		t.Fatalf("after the cutover the ECS target is %s, the source %s", got, newSum)
	}
	var live map[string]any
	for _, x := range dig(m, "launches").([]any) {
		if dig(x, "kind") == "cutover" {
			live = x.(map[string]any)
		}
	}
	if live == nil || live["status"] != "succeeded" || !strings.HasPrefix(live["instanceID"].(string), "fm-") {
		t.Fatalf("cutover launch: %v", dig(m, "launches"))
	}
	// Finalized: the live instance (on disks of its own) and the
	// replication's record (the target disk, its points) are all that is
	// left: no gateway, repair instance, image, launch disk or extra group.
	// The gateway goes after the cutover is live: its instance, then its
	// security group (which ECS frees a little after the instance).
	waitFor(t, "the gateway and its security group to go", 60*time.Second, func() bool {
		inv := ecs.srv.Inventory()
		return len(inv.Instances) == 1 && inv.Processes == 0 && len(inv.SecurityGroups) == 1
	})
	inv := ecs.srv.Inventory()
	t.Logf("after the cutover: %v", inv)
	if len(inv.Instances) != 1 || !strings.HasPrefix(inv.Instances[0].Name, "ferry-cutover-") || len(inv.Images) != 0 ||
		len(inv.SecurityGroups) != 1 || len(inv.Disks) != 2 {
		t.Errorf("after the cutover the emulator holds %v; want the live instance, its system disk, the target disk and the points", inv)
	}

	admin.mustGQL(`mutation($id: ID!) { rollback(migrationId: $id) { id } }`, map[string]any{"id": migID})
	waitFor(t, "the rollback", 120*time.Second, func() bool {
		m = w.migration(t, admin, migID)
		return m["state"] == "rolled_back"
	})
	inv = ecs.srv.Inventory()
	t.Logf("after the rollback: %v", inv)
	// What is left is the replication's record: the target disk and its
	// recovery points. No instance, image, launch disk or security group.
	if len(inv.Instances) != 0 || len(inv.Images) != 0 || len(inv.SecurityGroups) != 0 || len(inv.Disks) != 1 || inv.Processes != 0 {
		t.Errorf("after the rollback the emulator holds %v", inv)
	}
	if sha(t, w.img) != newSum {
		t.Fatal("the rollback changed the source")
	}
	// Every cloud call is in the migration's log (its steps' events) with
	// its RequestId.
	db, err := database.Open(context.Background(), filepath.Join(w.data, "ferry.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	calls := map[string]int{}
	for _, e := range db.Client.StepEvent.Query().AllX(viewer.SystemContext(context.Background())) {
		if strings.HasPrefix(e.Message, "alibaba ") {
			if !strings.Contains(e.Message, "[request ") || strings.Contains(e.Message, "[request none") {
				t.Errorf("a call logged without its RequestId: %q", e.Message)
			}
			calls[strings.Fields(e.Message)[1]]++
		}
	}
	for _, a := range []string{"CreateDisk", "RunInstances", "AttachDisk", "CreateSnapshot", "DescribeSnapshots", "CreateImage", "DeleteInstance"} {
		if calls[a] == 0 {
			t.Errorf("no %s in the migration's log (calls logged: %v)", a, calls)
		}
	}
	t.Logf("cloud calls in the migration's log: %v", calls)
	total := 0
	answered := ecs.srv.Calls()
	for _, n := range answered {
		total += n
	}
	t.Logf("calls the emulator answered for the migration (start, initial sync, test launch, cutover, rollback): %d: %v", total, answered)
}
