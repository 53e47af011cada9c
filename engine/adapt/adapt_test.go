package adapt_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/adapt"
	"github.com/ferry-migrate/ferry/engine/health"
	"github.com/ferry-migrate/ferry/engine/vm"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
)

const bootTimeout = 4 * time.Minute

// TestMain doubles as the guest-forward relay.
// tmpRoot is this test process's own temporary directory (TMPDIR), so
// that the adaptations it runs — their work directories, FUSE exports and
// mounts — are told apart from those of other processes on the machine
// (engine/cloud/local's and jobs/migration's tests adapt too, in parallel
// under go test -p 2).
var tmpRoot string

func TestMain(m *testing.M) {
	vmtest.MaybeRelay()
	var err error
	if tmpRoot, err = os.MkdirTemp("", "ferry-adapt-test-"); err != nil {
		panic(err)
	}
	os.Setenv("TMPDIR", tmpRoot)
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// noLeaks fails the test when loop devices, mounts or storage daemons of
// the adaptation survive it. Other processes on the machine have loop
// devices and adaptations of their own, so only ours count: those under
// this process's temporary directory (an adaptation's FUSE export, a
// temporary file of this test).
func noLeaks(t *testing.T) {
	mine := func(l string) bool { return strings.Contains(l, tmpRoot) }
	t.Cleanup(func() {
		for _, l := range vmtest.LoopDevices(t) {
			if mine(l) {
				t.Errorf("loop device left: %s", l)
			}
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), tmpRoot) {
			t.Errorf("mounts left:\n%s", mi)
		}
		out, _ := exec.Command("pgrep", "-a", "qemu-storage-d").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, tmpRoot) {
				t.Errorf("qemu-storage-daemon left: %s", l)
			}
		}
	})
}

func changesOf(res adapt.Result, step string) []adapt.Change {
	var out []adapt.Change
	for _, c := range res.Changes {
		if c.Step == step {
			out = append(out, c)
		}
	}
	return out
}

func findChange(t *testing.T, res adapt.Result, step, file, action string) adapt.Change {
	t.Helper()
	for _, c := range changesOf(res, step) {
		if c.File == file && c.Action == action {
			return c
		}
	}
	t.Errorf("no %s change %s of %s in %+v", action, step, file, res.Changes)
	return adapt.Change{}
}

// TestAdaptVMwareGuest adapts the overlay of the VMware-like image and
// checks each recorded change; the image itself stays byte-identical and
// nothing stays attached.
func TestAdaptVMwareGuest(t *testing.T) {
	img := vmtest.Image(t, vmtest.VMware)
	before := vmtest.SHA256(t, img)
	noLeaks(t)
	h := vmtest.NewHost(t)
	ctx := context.Background()
	in, err := h.Create(ctx, vm.Spec{Name: "adapt", Disks: []vm.Disk{{Image: img}}, Network: vm.Network{Mode: vm.NetIsolated}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := adapt.Linux(ctx, []string{in.Spec.Disks[0].Overlay}, adapt.Options{Network: adapt.Network{CIDR: "10.0.2.0/24"}})
	if err != nil {
		t.Fatalf("adapt: %v\n%+v", err, res)
	}
	t.Logf("adapted %s (%s) in %s", res.OS.PrettyName, res.Root, res.Duration)
	for _, c := range res.Changes {
		t.Logf("%s %s %s: %s\n  - %s\n  + %s", c.Step, c.Action, c.File, c.Why, c.Before, c.After)
	}
	if res.OS.ID != "debian" || res.OS.VersionID != "12" || !strings.HasPrefix(res.Root, "disk 0 partition 1 (ext4 UUID=") {
		t.Errorf("os %+v root %q", res.OS, res.Root)
	}
	uuid := strings.TrimSuffix(strings.SplitN(res.Root, "UUID=", 2)[1], ")")

	c := findChange(t, res, adapt.StepFstab, "/etc/fstab", "edited")
	if c.Before != "/dev/sda1 / ext4 errors=remount-ro 0 1" || c.After != "UUID="+uuid+" / ext4 errors=remount-ro 0 1" {
		t.Errorf("fstab change %+v", c)
	}
	c = findChange(t, res, adapt.StepBootloader, "/boot/grub/grub.cfg", "edited")
	if !strings.Contains(c.Before, "root=/dev/sda1") || !strings.Contains(c.After, "root=UUID="+uuid) || strings.Contains(c.After, "root=/dev/sda1") {
		t.Errorf("grub.cfg change %+v", c)
	}
	c = findChange(t, res, adapt.StepBootloader, "/etc/default/grub", "edited")
	if !strings.Contains(c.After, "GRUB_DISABLE_LINUX_UUID=false") {
		t.Errorf("default/grub change %+v", c)
	}
	c = findChange(t, res, adapt.StepNetwork, "/etc/network/interfaces", "edited")
	if !strings.Contains(c.Before, "iface eth0 inet static") || !strings.Contains(c.After, "iface eth0 inet dhcp") ||
		!strings.Contains(c.Why, "192.168.50.10/24 replaced by DHCP") {
		t.Errorf("interfaces change %+v", c)
	}
	c = findChange(t, res, adapt.StepNetRules, "/etc/udev/rules.d/70-persistent-net.rules", "removed")
	if !strings.Contains(c.Before, "00:50:56:8a:10:01") {
		t.Errorf("net rules change %+v", c)
	}
	c = findChange(t, res, adapt.StepVMwareTools, "/var/lib/dpkg/status", "purged")
	if c.Before != "open-vm-tools" {
		t.Errorf("vmware tools change %+v", c)
	}
	c = findChange(t, res, adapt.StepInitramfs, "/etc/initramfs-tools/modules", "edited")
	if !strings.Contains(c.After, "virtio_blk") {
		t.Errorf("initramfs modules change %+v", c)
	}
	if len(changesOf(res, adapt.StepInitramfs)) < 2 {
		t.Errorf("initramfs not regenerated: %+v", changesOf(res, adapt.StepInitramfs))
	}
	if after := vmtest.SHA256(t, img); after != before {
		t.Errorf("the source image changed")
	}

	// Adapting again finds nothing left to do but the initramfs run.
	res2, err := adapt.Linux(ctx, []string{in.Spec.Disks[0].Overlay}, adapt.Options{Network: adapt.Network{CIDR: "10.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res2.Changes {
		if c.Action != "kept" && c.Action != "regenerated" {
			t.Errorf("second adaptation changed %+v", c)
		}
	}
}

// TestAdaptFailuresNameStepAndFile: a disk without a Linux root, and a guest
// whose fstab names a root that is not on the disks.
func TestAdaptFailuresNameStepAndFile(t *testing.T) {
	noLeaks(t)
	ctx := context.Background()
	blank := t.TempDir() + "/blank.img"
	if err := os.WriteFile(blank, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := adapt.Linux(ctx, []string{blank}, adapt.Options{})
	var se *adapt.StepError
	if !errors.As(err, &se) || se.Step != adapt.StepDetect || !strings.Contains(err.Error(), "no Linux root filesystem") {
		t.Errorf("blank disk: %v", err)
	}

	// NTFS with no Linux root is a Windows guest: refused, not faked.
	// (mkfs.ntfs: Debian's ntfs-3g, in the Makefile's APT_PKGS.)
	ntfs := t.TempDir() + "/win.img"
	os.WriteFile(ntfs, make([]byte, 16<<20), 0o600)
	if out, err := exec.Command("mkfs.ntfs", "-Q", "-F", ntfs).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ntfs: %v %s", err, out)
	}
	if _, err := adapt.Linux(ctx, []string{ntfs}, adapt.Options{}); !errors.Is(err, adapt.ErrUnsupported) || !strings.Contains(err.Error(), "virtio-win") {
		t.Errorf("windows: %v", err)
	}

	// A copy of the VMware guest whose fstab names its root /dev/sdb1 (a
	// second disk the launch does not have).
	img := vmtest.Copy(t, vmtest.Image(t, vmtest.VMware))
	editRoot(t, img, func(root string) {
		os.WriteFile(root+"/etc/fstab", []byte("/dev/sdb1 / ext4 defaults 0 1\n"), 0o644)
	})
	_, err = adapt.Linux(ctx, []string{img}, adapt.Options{})
	if !errors.As(err, &se) || se.Step != adapt.StepFstab || se.File != "/etc/fstab" || !strings.Contains(err.Error(), "/dev/sdb1 is not on the launched disks") {
		t.Errorf("root not on the disks: %v", err)
	}

	// The same guest without a DHCP client cannot have its static eth0
	// turned into DHCP by ifupdown.
	editRoot(t, img, func(root string) {
		os.WriteFile(root+"/etc/fstab", []byte("/dev/sda1 / ext4 defaults 0 1\n"), 0o644)
		os.Remove(root + "/sbin/dhclient")
		os.Remove(root + "/usr/sbin/dhclient")
	})
	_, err = adapt.Linux(ctx, []string{img}, adapt.Options{})
	if !errors.As(err, &se) || se.Step != adapt.StepNetwork || se.File != "/etc/network/interfaces" || !strings.Contains(err.Error(), "needs a client") {
		t.Errorf("no DHCP client: %v", err)
	}
}

// editRoot mounts a raw image's first partition and lets f change it.
func editRoot(t *testing.T, img string, f func(root string)) {
	t.Helper()
	out, err := exec.Command("losetup", "-f", "--show", "-o", "1048576", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	dir := t.TempDir()
	if out, err := exec.Command("mount", loop, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	f(dir)
}

// TestVMwareGuestNeedsAdaptation: the VMware-like guest does not boot on
// virtio as it is (its initramfs lacks virtio_blk and it looks for
// /dev/sda1), and boots, with its service answering, once adapted.
func TestVMwareGuestNeedsAdaptation(t *testing.T) {
	img := vmtest.Image(t, vmtest.VMware)
	before := vmtest.SHA256(t, img)
	noLeaks(t)
	h := vmtest.NewHost(t)
	ctx := context.Background()
	cp := vmtest.NewControlPlane(t)
	spec := func(name string) vm.Spec {
		return vm.Spec{Name: name, Disks: []vm.Disk{{Image: img}}, MemoryMiB: 1024,
			Network: vm.Network{Mode: vm.NetIsolated, Ports: []int{80}, GuestForwards: []vm.GuestForward{cp.Forward(t, "10.0.2.100:8080")}}}
	}
	boot := func(name string) (health.Report, *vm.Instance, error) {
		return bootChecked(t, h, name, cp)
	}

	if _, err := h.Create(ctx, spec("as-is")); err != nil {
		t.Fatal(err)
	}
	rep, in, err := boot("as-is")
	if err == nil {
		t.Fatalf("the unadapted VMware guest booted on virtio:\n%s", rep.Evidence())
	}
	con := rep.Checks[0]
	if con.Passed || !strings.Contains(con.Message, "did not find the root device") || !strings.Contains(con.Evidence, "/dev/sda1") {
		t.Errorf("unadapted boot: %v\n%s\n%s", err, rep.Evidence(), vmtest.Describe(in))
	}
	if in.State != vm.StateStopped {
		t.Errorf("a failed boot left the instance %s", in.State)
	}

	in, err = h.Create(ctx, spec("adapted"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := adapt.Linux(ctx, []string{in.Spec.Disks[0].Overlay}, adapt.Options{Network: adapt.Network{CIDR: "10.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("adaptation took %s, %d changes", res.Duration, len(res.Changes))
	rep, in, err = boot("adapted")
	if err != nil {
		t.Fatalf("adapted boot: %v\n%s\n%s", err, rep.Evidence(), vmtest.Describe(in))
	}
	t.Logf("adapted guest healthy:\n%s", rep.Evidence())
	if e := cp.WaitEgress(t); e != "blocked" {
		t.Errorf("the isolated adapted guest reached the host directly: %q", e)
	}
	if after := vmtest.SHA256(t, img); after != before {
		t.Errorf("the source image changed")
	}
}

// bootChecked boots an instance with the console, port 80 and agent checks.
func bootChecked(t *testing.T, h *vm.Host, name string, cp *vmtest.ControlPlane) (health.Report, *vm.Instance, error) {
	var rep health.Report
	in, err := h.Boot(context.Background(), name, bootTimeout, func(ctx context.Context, in *vm.Instance) error {
		rep = health.Run(ctx, health.Console{Path: in.ConsolePath(), Also: []string{in.FirmwarePath()}},
			health.Ports{Ports: []health.Port{{Port: 80, Addr: in.HostAddr(80)}}},
			health.Agent{Phoned: cp.Phoned})
		return rep.Err()
	})
	return rep, in, err
}

// TestCutoverNetworkKeepsStaticAddress: on a target network given the
// source's subnet, the adaptation keeps the VMware guest's static address;
// the guest boots on it, answers on port 80 through the forward to
// 192.168.50.10, phones home, and (unlike a test launch) reaches the
// outside.
func TestCutoverNetworkKeepsStaticAddress(t *testing.T) {
	img := vmtest.Image(t, vmtest.VMware)
	noLeaks(t)
	h := vmtest.NewHost(t)
	cp := vmtest.NewControlPlane(t)
	cp.EgressHost = "192.168.50.1"
	ctx := context.Background()
	in, err := h.Create(ctx, vm.Spec{Name: "cutover", Disks: []vm.Disk{{Image: img}}, MemoryMiB: 1024, Network: vm.Network{
		Mode: vm.NetTarget, CIDR: "192.168.50.0/24", Gateway: "192.168.50.1", GuestAddr: "192.168.50.10", Ports: []int{80},
		GuestForwards: []vm.GuestForward{cp.Forward(t, "192.168.50.100:8080")}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := adapt.Linux(ctx, []string{in.Spec.Disks[0].Overlay}, adapt.Options{Network: adapt.Network{CIDR: "192.168.50.0/24", KeepStatic: true}})
	if err != nil {
		t.Fatal(err)
	}
	c := findChange(t, res, adapt.StepNetwork, "/etc/network/interfaces", "kept")
	if !strings.Contains(c.Why, "static address 192.168.50.10/24 kept: it lies in the target network 192.168.50.0/24") {
		t.Errorf("network change %+v", c)
	}
	rep, in, err := bootChecked(t, h, "cutover", cp)
	if err != nil {
		t.Fatalf("boot: %v\n%s\n%s", err, rep.Evidence(), vmtest.Describe(in))
	}
	if e := cp.WaitEgress(t); e != "open" {
		t.Errorf("the cutover guest could not reach the outside: %q", e)
	}
}
