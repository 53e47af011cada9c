package local

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/health"
	"github.com/ferry-migrate/ferry/engine/vm"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
)

// TestMain doubles as the guest-forward relay the launched copy's agent
// phones home through.
func TestMain(m *testing.M) {
	vmtest.MaybeRelay()
	os.Exit(m.Run())
}

// vmDriver is a CAS driver whose launches boot in qemu, with the test
// control plane as the agent endpoint. When the test ends no qemu process
// of it may be left, nor any file in its VM state directory.
func vmDriver(t *testing.T) (*Driver, *vmtest.ControlPlane) {
	t.Helper()
	cp := vmtest.NewControlPlane(t)
	dir := t.TempDir()
	cache := strings.TrimSuffix(vmtest.Image(t, vmtest.Base), ".img") + ".accel.json"
	d, err := New(dir, Options{Mode: ModeCAS, VM: &VMOptions{
		Probe: vmtest.Probe(t), AccelCache: cache, BootTimeout: 4 * time.Minute,
		AgentForwards: []vm.GuestForward{cp.Forward(t, "10.0.2.100:8080")},
		AgentPhoned: func(ctx context.Context, m cloud.Machine, since time.Time) (string, bool, error) {
			return cp.Phoned(ctx)
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pids := vmtest.QemuProcesses(d.VMHost().Dir()); len(pids) > 0 {
			t.Errorf("qemu processes left: %v", pids)
			for _, in := range must(d.VMHost().List()) {
				d.VMHost().Delete(context.Background(), in.Name())
			}
		}
		vmtest.AssertEmptyDir(t, d.VMHost().Dir())
		d.Close()
	})
	return d, cp
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// pointOf replicates image into a new disk of the driver (as the gateway
// would) and takes its recovery point.
func pointOf(t *testing.T, d *Driver, id, image string) cloud.RecoveryPoint {
	t.Helper()
	fi, err := os.Stat(image)
	if err != nil {
		t.Fatal(err)
	}
	path := mustDisk(t, d, id, fi.Size())
	if out, err := exec.Command("cp", "--sparse=always", image, path).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	p, err := d.CreateRecoveryPoint(context.Background(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func checkNamed(m cloud.Machine, name string) (cloud.Check, bool) {
	for _, c := range m.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return cloud.Check{}, false
}

// TestVMwareGuestLaunchesAdaptedAndHealthy is one real boot through the
// driver: a VMware-like guest (no virtio in its initramfs, fstab by
// /dev/sda1, static eth0) is adapted on the launch's overlays, boots on an
// isolated network, and every check passes with its duration and evidence;
// neither the recovery point nor the materialised disk is written; the
// instance is listed while it runs and nothing of it is left after
// Terminate.
func TestVMwareGuestLaunchesAdaptedAndHealthy(t *testing.T) {
	d, cp := vmDriver(t)
	ctx := context.Background()
	img := vmtest.Image(t, vmtest.VMware)
	p := pointOf(t, d, "src", img)
	pointBefore := materialiseSHA(t, d, p.ID)
	manifestBefore := fileSHA(t, d.dir+"/points/"+p.ID+".manifest")

	m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "t1", Kind: cloud.LaunchTest, MigrationID: "m1", Points: []string{p.ID},
		Shape: cloud.Shape{VCPUs: 8, MemoryMiB: 32768}, Ports: []int{80}})
	if err != nil {
		t.Fatal(err)
	}
	m, err = d.AdaptMachine(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	ad, ok := checkNamed(m, "adapt")
	if !ok || !ad.Passed || m.State != cloud.MachineStarting || m.Stage != stageAdapted {
		t.Fatalf("after adapt: state %s stage %q checks %+v", m.State, m.Stage, m.Checks)
	}
	for _, want := range []string{"fstab edited /etc/fstab", "initramfs", "network"} {
		if !strings.Contains(ad.Evidence, want) {
			t.Errorf("adapt evidence lacks %q:\n%s", want, ad.Evidence)
		}
	}
	if sh, _ := checkNamed(m, "shape"); !strings.Contains(sh.Message, "2 vCPU / 2048 MiB") || !strings.Contains(sh.Message, "capped") {
		t.Errorf("shape check %+v", sh)
	}
	// Adapting again is a no-op: the stage is recorded.
	if again, err := d.AdaptMachine(ctx, m.ID); err != nil || len(again.Checks) != len(m.Checks) {
		t.Fatalf("second adapt: %v, %d checks (want %d)", err, len(again.Checks), len(m.Checks))
	}

	m, err = d.BootMachine(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != cloud.MachineRunning {
		t.Fatalf("state %s, checks %+v\nconsole:\n%s", m.State, m.Checks, m.Console)
	}
	for _, name := range []string{"console", "ports", "agent"} {
		c, ok := checkNamed(m, name)
		if !ok || !c.Passed || c.Skipped || c.Duration <= 0 || c.Evidence == "" {
			t.Errorf("check %s: %+v", name, c)
		}
	}
	if !health.DefaultReady.MatchString(m.Console) || m.Accel == "" || m.HealthyAt.IsZero() {
		t.Errorf("console %q accel %q healthy at %v", lastLines(m.Console, 5), m.Accel, m.HealthyAt)
	}
	if i := strings.IndexByte(m.Console, 0x1b); i >= 0 {
		t.Errorf("terminal escapes left in the console excerpt: %q", m.Console[max(0, i-40):min(len(m.Console), i+40)])
	}
	if e := cp.WaitEgress(t); e != "blocked" {
		t.Errorf("a test launch reached the host directly: egress %q", e)
	}
	// qemu writes only the overlays: the materialised disk is the image.
	if got, want := fileSHA(t, d.diskFile(m.Disks[0].DiskID)), fileSHA(t, img); got != want {
		t.Errorf("the machine's disk was written: %s, image %s", got, want)
	}
	ins, err := d.VMHost().List()
	if err != nil || len(ins) != 1 || ins[0].Name() != m.ID || ins[0].State != "running" {
		t.Fatalf("VMs while running: %v %v", ins, err)
	}
	if again, err := d.Wait(ctx, m.ID); err != nil || again.State != cloud.MachineRunning {
		t.Fatalf("wait on a settled machine: %v %v", again.State, err)
	}

	if err := d.Terminate(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if ins, _ := d.VMHost().List(); len(ins) != 0 {
		t.Errorf("VMs after terminate: %v", ins)
	}
	if pids := vmtest.QemuProcesses(d.VMHost().Dir()); len(pids) > 0 {
		t.Errorf("qemu left after terminate: %v", pids)
	}
	if materialiseSHA(t, d, p.ID) != pointBefore || fileSHA(t, d.dir+"/points/"+p.ID+".manifest") != manifestBefore {
		t.Error("the recovery point changed")
	}
}

// TestBrokenLaunchesFailNamingWhy: a disk without a partition table fails
// before anything boots; a kernel that panics fails the console check with
// the excerpt showing the panic. No VM is left of either.
func TestBrokenLaunchesFailNamingWhy(t *testing.T) {
	d, _ := vmDriver(t)
	ctx := context.Background()

	nb := pointOf(t, d, "nb", vmtest.Image(t, vmtest.NoBootloader))
	m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "nb", Kind: cloud.LaunchTest, MigrationID: "m1", Points: []string{nb.ID}})
	if err != nil {
		t.Fatal(err)
	}
	m, err = d.Wait(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := checkNamed(m, "partition-table"); m.State != cloud.MachineFailed || c.Passed || !strings.Contains(c.Message, "no MBR or GPT") {
		t.Errorf("no bootloader: state %s, checks %+v", m.State, m.Checks)
	}

	pn := pointOf(t, d, "panic", vmtest.Image(t, vmtest.Panic))
	before := materialiseSHA(t, d, pn.ID)
	m, err = d.CreateMachine(ctx, cloud.MachineSpec{Token: "panic", Kind: cloud.LaunchTest, MigrationID: "m1", Points: []string{pn.ID}, Ports: []int{80}})
	if err != nil {
		t.Fatal(err)
	}
	m, err = d.Wait(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := checkNamed(m, "console")
	if m.State != cloud.MachineFailed || c.Passed || !strings.Contains(strings.ToLower(c.Message+c.Evidence), "panic") {
		t.Errorf("panic: state %s, console check %+v\nchecks %+v", m.State, c, m.Checks)
	}
	if !strings.Contains(m.Console, "Kernel panic") {
		t.Errorf("console excerpt lacks the panic:\n%s", m.Console)
	}
	if ins, _ := d.VMHost().List(); len(ins) != 0 {
		t.Errorf("VMs left by failed launches: %v", ins)
	}
	for _, id := range []string{machineID("nb"), m.ID} {
		if err := d.Terminate(ctx, id); err != nil {
			t.Error(err)
		}
	}
	if materialiseSHA(t, d, pn.ID) != before {
		t.Error("the recovery point changed")
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
