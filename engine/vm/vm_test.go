package vm_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/health"
	"github.com/ferry-migrate/ferry/engine/vm"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
)

// bootTimeout is generous: a TCG boot takes ≈ 15 s on an idle machine and
// several times that on two cores shared with other builds.
const bootTimeout = 4 * time.Minute

// TestMain doubles as the guest-forward relay.
func TestMain(m *testing.M) {
	vmtest.MaybeRelay()
	os.Exit(m.Run())
}

// checks are the health checks of a launch of the test image.
func checks(in *vm.Instance, cp *vmtest.ControlPlane) []health.Checker {
	c := []health.Checker{
		health.Console{Path: in.ConsolePath(), Also: []string{in.FirmwarePath()}},
		health.Ports{Ports: []health.Port{{Port: 80, Addr: in.HostAddr(80)}}},
	}
	if cp != nil {
		c = append(c, health.Agent{Phoned: cp.Phoned})
	}
	return c
}

// TestBootTestImage is the whole path once: the image boots on an isolated
// network, every health check passes, the service answers through its
// forwarded port, the guest could phone home but not reach the host
// directly, QMP controls it, an ACPI shutdown stops it, and the recovery
// point is byte-identical afterwards.
func TestBootTestImage(t *testing.T) {
	img := vmtest.Image(t, vmtest.Base)
	before := vmtest.SHA256(t, img)
	h := vmtest.NewHost(t)
	cp := vmtest.NewControlPlane(t)
	ctx := context.Background()

	in, err := h.Create(ctx, vm.Spec{Name: "base", Disks: []vm.Disk{{Image: img}}, CPUs: 1, MemoryMiB: 1024,
		Network: vm.Network{Mode: vm.NetIsolated, Ports: []int{80}, GuestForwards: []vm.GuestForward{cp.Forward(t, "10.0.2.100:8080")}},
		Labels:  map[string]string{"kind": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if in.State != vm.StateCreated || len(in.Spec.Disks) != 1 || in.Spec.Disks[0].Overlay == "" {
		t.Fatalf("created %+v", in)
	}
	var rep health.Report
	in, err = h.Boot(ctx, "base", bootTimeout, func(ctx context.Context, in *vm.Instance) error {
		rep = health.Run(ctx, checks(in, cp)...)
		return rep.Err()
	})
	if err != nil {
		t.Fatalf("boot: %v\n%s\n%s", err, rep.Evidence(), vmtest.Describe(in))
	}
	t.Logf("accel %s (%s)\n%s", in.Accel, in.AccelReason, rep.Evidence())
	if in.Accel == "" || in.AccelReason == "" {
		t.Errorf("accel not recorded: %q %q", in.Accel, in.AccelReason)
	}
	for _, c := range rep.Checks {
		if !c.Passed || c.Duration <= 0 || c.Evidence == "" {
			t.Errorf("check %+v", c)
		}
	}

	resp, err := http.Get("http://" + in.HostAddr(80) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "ferry test image ") {
		t.Errorf("GET / through the forwarded port: %q", body)
	}
	if e := cp.WaitEgress(t); e != "blocked" {
		t.Errorf("the isolated guest reached the host directly: egress %q", e)
	}

	if st, err := h.Status(ctx, "base"); err != nil || st != "running" {
		t.Errorf("QMP status %q, %v", st, err)
	}
	list, err := h.List()
	if err != nil || len(list) != 1 || list[0].State != vm.StateRunning || list[0].Spec.Labels["kind"] != "test" {
		t.Errorf("list %+v, %v", list, err)
	}
	if _, err := h.Start(ctx, "base"); !errors.Is(err, vm.ErrRunning) {
		t.Errorf("second start: %v", err)
	}

	in, err = h.Stop(ctx, "base", 3*time.Minute)
	if err != nil || in.State != vm.StateStopped {
		t.Fatalf("stop: %+v, %v", in, err)
	}
	con, _ := in.ConsoleTail(4000)
	if !strings.Contains(con, "reboot: Power down") {
		t.Errorf("the guest did not shut down through ACPI; exit %q, console tail:\n%s", in.Exit, con)
	}
	if fi, err := os.Stat(in.Spec.Disks[0].Overlay); err != nil || fi.Size() < 1<<20 {
		t.Errorf("overlay took no writes: %v %v", fi, err)
	}
	if after := vmtest.SHA256(t, img); after != before {
		t.Errorf("the recovery point changed: sha256 %s before, %s after", before, after)
	}
}

// TestAnotherProcessStopsIt: a Host opened later on the same directory (a
// restarted control plane) lists the running instance and deletes it; no
// qemu process or file is left.
func TestAnotherProcessStopsIt(t *testing.T) {
	img := vmtest.Image(t, vmtest.Base)
	h := vmtest.NewHost(t)
	ctx := context.Background()
	if _, err := h.Create(ctx, vm.Spec{Name: "orphan", Disks: []vm.Disk{{Image: img}}, Accel: vm.AccelTCG, Network: vm.Network{Mode: vm.NetTarget}}); err != nil {
		t.Fatal(err)
	}
	in, err := h.Start(ctx, "orphan")
	if err != nil {
		t.Fatal(err)
	}
	if in.Accel != vm.AccelTCG || in.AccelReason != "requested by the spec" {
		t.Errorf("accel %q %q", in.Accel, in.AccelReason)
	}
	later, err := vm.NewHost(h.Dir(), vm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := later.List()
	if err != nil || len(list) != 1 || list[0].State != vm.StateRunning || list[0].PID != in.PID {
		t.Fatalf("the later host lists %+v, %v", list, err)
	}
	if err := later.Delete(ctx, "orphan"); err != nil {
		t.Fatal(err)
	}
	if pids := vmtest.QemuProcesses(h.Dir()); len(pids) > 0 {
		t.Errorf("qemu still running: %v", pids)
	}
	if _, err := h.Get("orphan"); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	vmtest.AssertEmptyDir(t, h.Dir())
}

func TestCreateRefusesBadSpecs(t *testing.T) {
	img := vmtest.Image(t, vmtest.Base)
	h := vmtest.NewHost(t)
	ctx := context.Background()
	ok := vm.Spec{Name: "ok", Disks: []vm.Disk{{Image: img}}, Network: vm.Network{Mode: vm.NetIsolated}}
	for _, tc := range []struct {
		name string
		edit func(*vm.Spec)
		want string
	}{
		{"bad name", func(s *vm.Spec) { s.Name = "Bad/Name" }, "name"},
		{"no disks", func(s *vm.Spec) { s.Disks = nil }, "no disks"},
		{"no such image", func(s *vm.Spec) { s.Disks = []vm.Disk{{Image: "/nonexistent.img"}} }, "no such file"},
		{"format", func(s *vm.Spec) { s.Disks[0].Format = "vmdk" }, "format"},
		{"shape", func(s *vm.Spec) { s.MemoryMiB = 16 }, "shape"},
		{"network mode", func(s *vm.Spec) { s.Network.Mode = "bridge" }, "network mode"},
		{"cidr", func(s *vm.Spec) { s.Network.CIDR = "10.0.0.0/30" }, "CIDR"},
		{"guest addr outside", func(s *vm.Spec) { s.Network.GuestAddr = "192.168.1.5" }, "not an address in 10.0.2.0/24"},
		{"guest forward outside", func(s *vm.Spec) {
			s.Network.GuestForwards = []vm.GuestForward{{Guest: "192.168.1.1:80", Command: []string{"true"}}}
		}, "guest forward"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			s.Disks = append([]vm.Disk(nil), ok.Disks...)
			tc.edit(&s)
			_, err := h.Create(ctx, s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := h.Create(ctx, ok); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Create(ctx, ok); !errors.Is(err, vm.ErrExists) {
		t.Errorf("second create: %v", err)
	}
}

// TestStartFailureSaysWhy: qemu that cannot start (the recovery point
// behind the overlay is gone) is reported with its own words and leaves the
// instance stopped.
func TestStartFailureSaysWhy(t *testing.T) {
	img := t.TempDir() + "/point.img"
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	h := vmtest.NewHost(t)
	ctx := context.Background()
	if _, err := h.Create(ctx, vm.Spec{Name: "nope", Disks: []vm.Disk{{Image: img}}, Accel: vm.AccelTCG, Network: vm.Network{Mode: vm.NetIsolated}}); err != nil {
		t.Fatal(err)
	}
	os.Remove(img)
	_, err := h.Start(ctx, "nope")
	if !errors.Is(err, vm.ErrExited) || !strings.Contains(err.Error(), img) {
		t.Fatalf("start: %v", err)
	}
	in, err := h.Get("nope")
	if err != nil || in.State == vm.StateRunning {
		t.Errorf("after a failed start: %+v, %v", in, err)
	}
}

// TestAccelProbe: the probe boot succeeds under TCG (so it can tell a
// working accelerator), fails on a kernel that does not boot, and the
// Host's verdict is recorded with its reason and cached.
func TestAccelProbe(t *testing.T) {
	p := vmtest.Probe(t)
	// The TCG probe here asserts that TCG works, not how fast: on two cores
	// shared with the rest of the suite its kernel can take past the 45 s
	// that the KVM verdict's probe allows.
	p.Timeout = 3 * time.Minute
	ctx := context.Background()
	h, err := vm.NewHost(t.TempDir(), vm.Options{Probe: p})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := h.ProbeBoot(ctx, vm.AccelTCG); err != nil {
		t.Errorf("TCG probe: %v", err)
	} else {
		t.Logf("TCG probe boot reached userspace in %s", d)
	}
	junk := t.TempDir() + "/vmlinuz"
	os.WriteFile(junk, []byte(strings.Repeat("not a kernel ", 1000)), 0o600)
	bad, _ := vm.NewHost(t.TempDir(), vm.Options{Probe: vm.Probe{Kernel: junk, Timeout: 20 * time.Second}})
	if _, err := bad.ProbeBoot(ctx, vm.AccelTCG); err == nil {
		t.Errorf("a junk kernel passed the probe")
	}

	shared := vmtest.NewHost(t) // the verdict every boot test uses
	accel, why, err := shared.Accel(ctx)
	if err != nil || accel == "" || why == "" {
		t.Fatalf("accel %q %q %v", accel, why, err)
	}
	t.Logf("this machine: %s (%s)", accel, why)
	if accel == vm.AccelKVM && !strings.Contains(why, "probe boot reached userspace") {
		t.Errorf("KVM chosen without a probe boot: %s", why)
	}
	if _, why2, _ := shared.Accel(ctx); !strings.Contains(why2, "cached") {
		t.Errorf("second verdict not cached: %s", why2)
	}
}

// TestBrokenImagesFail: an image without a boot loader, one with a corrupt
// root filesystem and one whose kernel panics each end as a failed boot
// whose console (or firmware) excerpt shows why, stopped, with the recovery
// point unchanged; the Host's cleanup then finds no process or file left.
func TestBrokenImagesFail(t *testing.T) {
	for _, tc := range []struct {
		variant, message, evidence string
	}{
		{vmtest.NoBootloader, "the firmware found no boot loader", "Booting from Hard Disk"},
		{vmtest.Panic, "the kernel panicked", "Kernel panic - not syncing"},
		{vmtest.CorruptRoot, "no working init", "EXT4-fs error"},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			img := vmtest.Image(t, tc.variant)
			before := vmtest.SHA256(t, img)
			h := vmtest.NewHost(t)
			ctx := context.Background()
			if _, err := h.Create(ctx, vm.Spec{Name: tc.variant, Disks: []vm.Disk{{Image: img}}, Network: vm.Network{Mode: vm.NetIsolated, Ports: []int{80}}}); err != nil {
				t.Fatal(err)
			}
			var rep health.Report
			in, err := h.Boot(ctx, tc.variant, bootTimeout, func(ctx context.Context, in *vm.Instance) error {
				rep = health.Run(ctx, checks(in, nil)...)
				return rep.Err()
			})
			if err == nil {
				t.Fatalf("the %s image booted:\n%s", tc.variant, rep.Evidence())
			}
			con := rep.Checks[0]
			t.Logf("%v\nconsole check: %s\n%s", err, con.Message, con.Evidence)
			if con.Passed || !strings.Contains(con.Message, tc.message) || !strings.Contains(con.Evidence, tc.evidence) {
				t.Errorf("console check %+v; want message with %q and evidence with %q\n%s", con, tc.message, tc.evidence, vmtest.Describe(in))
			}
			if strings.Contains(con.Message, "no login prompt") {
				t.Errorf("the failure was only seen at the deadline: %s", con.Message)
			}
			if in.State != vm.StateStopped {
				t.Errorf("instance %s after a failed boot", in.State)
			}
			if after := vmtest.SHA256(t, img); after != before {
				t.Errorf("the recovery point changed")
			}
		})
	}
}
