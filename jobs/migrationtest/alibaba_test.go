package migrationtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/ferry-migrate/ferry/ent/assessment"
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

// startECSIn is startECS keeping the emulator's state in dir. Its
// instances of custom images (launches) do not boot: tests using it turn
// the account's boot check off (account(…, bootCheckOff)).
func startECSIn(t testing.TB, w *world, dir string) *emulatedECS {
	t.Helper()
	return startECSWith(t, w, dir, ecsemu.VMOptions{NoBoot: true})
}

// startECSWith is startECSIn with the emulator's VM options.
func startECSWith(t testing.TB, w *world, dir string, vm ecsemu.VMOptions) *emulatedECS {
	t.Helper()
	return startECSOpts(t, w, ecsemu.Options{Dir: dir, VM: vm})
}

// startECSOpts is startECS with the emulator's options (Dir, VM, Quota);
// its instances run the world's binary.
func startECSOpts(t testing.TB, w *world, opt ecsemu.Options) *emulatedECS {
	t.Helper()
	opt.Path, opt.Logf = []string{filepath.Dir(w.bin)}, func(string, ...any) {}
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

// bootCheckOff is the account setting of tests whose emulator does not
// boot launches (NoBoot) or whose disks are not bootable: their launches'
// boot check then says it was skipped by this setting, and the tests check
// that it says so.
var bootCheckOff = map[string]any{"boot_check": "off"}

// account creates the tenant's Alibaba account pointing at the emulator,
// with extra settings.
func (e *emulatedECS) account(t testing.TB, c *client, extra ...map[string]any) string {
	t.Helper()
	s := map[string]any{"endpoint": e.url, "vswitch_id": e.vswitch, "source_cidrs": "127.0.0.0/8"}
	for _, x := range extra {
		for k, v := range x {
			s[k] = v
		}
	}
	d := c.mustGQL(`mutation($s: Map) { createCloudAccount(input: {name: "hangzhou", provider: alibaba, region: "cn-hangzhou",
		accessKeyID: "`+ecsemu.DefaultKeyID+`", secret: "`+ecsemu.DefaultKeySecret+`", settings: $s}) { id } }`,
		map[string]any{"s": s})
	return dig(d, "createCloudAccount", "id").(string)
}

// sdk is a client of the emulator through the real SDK.
func (e *emulatedECS) sdk(t *testing.T) *alibaba.Client {
	t.Helper()
	c, err := alibaba.New(alibaba.Config{Region: "cn-hangzhou", Endpoint: strings.TrimPrefix(e.url, "http://"), Scheme: "http",
		Credentials: alibaba.Credentials{AccessKeyID: ecsemu.DefaultKeyID, AccessKeySecret: ecsemu.DefaultKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// launchedInstance is the ECS instance of a launch (its name starts
// ferry-test- or ferry-cutover-), as DescribeInstances tells it.
func (e *emulatedECS) launchedInstance(t *testing.T, kind string) alibaba.Instance {
	t.Helper()
	for _, it := range e.srv.Inventory().Instances {
		if strings.HasPrefix(it.Name, "ferry-"+kind+"-") {
			in, err := e.sdk(t).Instance(context.Background(), it.ID)
			if err != nil {
				t.Fatal(err)
			}
			return in
		}
	}
	t.Fatalf("no %s instance in %v", kind, e.srv.Inventory())
	return alibaba.Instance{}
}

// launchCheck is the launch's check named name.
func launchCheck(l map[string]any, name string) map[string]any {
	checks, _ := l["checks"].([]any)
	for _, c := range checks {
		if c, ok := c.(map[string]any); ok && c["name"] == name {
			return c
		}
	}
	return nil
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
	// The emulator does not boot this test's launches (the disk is random
	// bytes anyway): the account says so, and the launches' boot check must
	// too. TestAlibabaLaunchMustBoot is the same launch with the boot check on.
	acct := ecs.account(t, admin, bootCheckOff)
	chk := admin.mustGQL(`mutation($id: ID!) { checkCloudAccount(id: $id) { ok checks { name ok message } } }`, map[string]any{"id": acct})
	if dig(chk, "checkCloudAccount", "ok") != true {
		t.Fatalf("account check: %v", chk)
	}
	// The host's assessment for Alibaba Cloud recommends an instance type:
	// the launches must run on it.
	admin.mustGQL(`mutation { runAssessment(target: "alibaba") { hosts } }`, nil)
	db, err := database.Open(context.Background(), filepath.Join(w.data, "ferry.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sys := viewer.SystemContext(context.Background())
	assessed := db.Client.Assessment.Query().Where(assessment.TargetEQ("alibaba")).OnlyX(sys)
	if assessed.InstanceType == "" || !strings.HasPrefix(assessed.InstanceType, "ecs.") {
		t.Fatalf("the assessment for alibaba recommends %q (%+v)", assessed.InstanceType, assessed)
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
	// The figure three ways: the assessment row, the instance ECS runs,
	// the Launch row as the API reports it.
	testInst := ecs.launchedInstance(t, "test")
	testLaunch := dig(m, "launches", 0).(map[string]any)
	if testInst.Type != assessed.InstanceType || testLaunch["instanceType"] != assessed.InstanceType ||
		!strings.Contains(testLaunch["sizing"].(string), fmt.Sprintf("assessment %d for alibaba", assessed.ID)) {
		t.Errorf("assessment %d recommends %s; ECS runs the test launch as %s; the launch reports %v (%v)",
			assessed.ID, assessed.InstanceType, testInst.Type, testLaunch["instanceType"], testLaunch["sizing"])
	}
	if c := launchCheck(testLaunch, "boot"); c == nil || c["skipped"] != true || !strings.Contains(c["message"].(string), "boot_check=off") {
		t.Errorf("boot check with boot_check=off: %v, want skipped by the setting", c)
	}
	if msg, _ := testLaunch["message"].(string); !strings.Contains(msg, "was not booted") || !strings.Contains(msg, "boot_check=off") {
		t.Errorf("the passed launch's message %q does not say the copy was not booted, and why", msg)
	}
	t.Logf("test launch: %s (%s)", testLaunch["instanceType"], testLaunch["sizing"])

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
	if in := ecs.launchedInstance(t, "cutover"); in.Type != assessed.InstanceType || live["instanceType"] != assessed.InstanceType {
		t.Errorf("the cutover runs as %s (the launch says %v), the assessment recommends %s", in.Type, live["instanceType"], assessed.InstanceType)
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

// TestAlibabaLaunchMustBoot is a test launch as `ferry serve` runs it by
// default, with the boot check on: the emulator boots the launched
// instance under qemu (the one real boot of the app's Go tests) and the
// control plane reads its serial console through GetInstanceConsoleOutput.
// The disk is random bytes, so nothing boots: the launch must fail with a
// message saying so, and the migration must not become cutover_ready. The
// host has only an assessment for OpenStack, so the instance type is sized
// from its vCPUs and memory with DescribeInstanceTypes: the type ECS ran is
// the one the launch reports.
func TestAlibabaLaunchMustBoot(t *testing.T) {
	const size = 16 << 20
	w := newWorld(t, size, [2]int64{4 << 20, 4 << 20})
	ecs := startECSWith(t, w, t.TempDir(), ecsemu.VMOptions{})
	admin := w.admin
	acct := ecs.account(t, admin, map[string]any{"boot_timeout": "30s"})
	chk := admin.mustGQL(`mutation($id: ID!) { checkCloudAccount(id: $id) { ok checks { name ok message } } }`, map[string]any{"id": acct})
	var bootLine map[string]any
	for _, c := range dig(chk, "checkCloudAccount", "checks").([]any) {
		if dig(c, "name") == "launch boot check" {
			bootLine = c.(map[string]any)
		}
	}
	if bootLine == nil || bootLine["ok"] != true || !strings.Contains(bootLine["message"].(string), "login prompt") ||
		!strings.Contains(bootLine["message"].(string), "30s") {
		t.Errorf("the account check's boot line: %v, want the boot check on with the account's 30s", bootLine)
	}
	admin.mustGQL(`mutation { runAssessment(target: "openstack") { hosts } }`, nil)
	db, err := database.Open(context.Background(), filepath.Join(w.data, "ferry.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	foreign := db.Client.Assessment.Query().Where(assessment.TargetEQ("openstack")).OnlyX(viewer.SystemContext(context.Background()))

	d := admin.mustGQL(`mutation($h: [ID!]!, $a: ID) { startMigration(hostIds: $h, cloudAccountId: $a) { id state } }`,
		map[string]any{"h": []string{w.hostID}, "a": acct})
	migID := dig(d, "startMigration", 0, "id").(string)
	var m map[string]any
	waitFor(t, "the initial sync to Alibaba", 180*time.Second, func() bool {
		m = w.migration(t, admin, migID)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v %v", m["failureReason"], m["lastError"])
		}
		return m["state"] == "syncing" && m["percent"] == float64(100) && m["latestRecoveryPoint"] != nil
	})
	admin.mustGQL(`mutation($id: ID!) { testLaunch(migrationId: $id) { id } }`, map[string]any{"id": migID})
	started := time.Now()
	var l map[string]any
	sawVM := false
	waitFor(t, "the test launch to fail its boot check", 300*time.Second, func() bool {
		sawVM = sawVM || ecs.srv.Inventory().VMs > 0
		m = w.migration(t, admin, migID)
		if m["state"] == "cutover_ready" {
			t.Fatalf("a launch of random bytes passed: %v", dig(m, "launches"))
		}
		ls, _ := m["launches"].([]any)
		if len(ls) == 0 {
			return false
		}
		l = ls[0].(map[string]any)
		return l["status"] == "failed" && m["state"] == "syncing"
	})
	t.Logf("test launch failed after %s: %v", time.Since(started).Round(time.Second), l["checks"])
	// It was a real boot: the launched instance was a qemu VM. Failed, it is
	// released (as the local cloud's are), its verdict kept.
	if !sawVM {
		t.Error("the emulator never ran the launched instance as a VM")
	}
	waitFor(t, "the failed launch's instance to be released", 60*time.Second, func() bool {
		inv := ecs.srv.Inventory()
		for _, in := range inv.Instances {
			if strings.HasPrefix(in.Name, "ferry-test-") {
				return false
			}
		}
		return inv.VMs == 0
	})
	boot := launchCheck(l, "boot")
	if boot == nil || boot["passed"] != false || boot["skipped"] == true || !strings.Contains(boot["message"].(string), "no login prompt on the console within 30s") {
		t.Errorf("boot check %v: want failed, naming the missing login prompt and the 30s timeout", boot)
	}
	if le, _ := m["lastError"].(string); !strings.Contains(le, "boot") {
		t.Errorf("the migration's last error %q does not say the boot failed", le)
	}
	// The type ECS ran (DescribeInstances, in the instance check) is the
	// one the launch reports, sized from the OpenStack assessment.
	inst := launchCheck(l, "instance")
	sizing, _ := l["sizing"].(string)
	typ, _ := l["instanceType"].(string)
	if inst == nil || inst["passed"] != true || typ == "" || !strings.Contains(inst["message"].(string), "("+typ+", image ") ||
		!strings.Contains(sizing, fmt.Sprintf("assessment %d for openstack", foreign.ID)) || !strings.Contains(sizing, "DescribeInstanceTypes") {
		t.Errorf("instance check %v; the launch reports %q (%s); want the type sized from assessment %d", inst, typ, sizing, foreign.ID)
	}
	t.Logf("sized %s: %s", typ, sizing)
}
