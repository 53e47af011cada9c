package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/snapshot/snapshottest"
)

// The watchdog test freezes from a child process (this test binary,
// re-executed) that is then SIGKILLed while the filesystem is frozen.
func TestMain(m *testing.M) {
	if mnt := os.Getenv("FERRY_TEST_FREEZE"); mnt != "" {
		if _, err := freeze(context.Background(), []string{mnt}, Options{FreezeFor: 3 * time.Second, Logf: func(string, ...any) {}}); err != nil {
			fmt.Println("freeze failed:", err)
			os.Exit(1)
		}
		fmt.Println("FROZEN")
		select {} // killed here, frozen
	}
	os.Exit(m.Run())
}

func ext4Mounted(t *testing.T, dir string) (img, mnt string) {
	img = filepath.Join(dir, "disk.img")
	snapshottest.Ext4Image(t, img, 32<<20)
	mnt = filepath.Join(dir, "mnt")
	snapshottest.Mount(t, snapshottest.Loop(t, img), mnt)
	return img, mnt
}

// writeWithin writes a file on the filesystem at mnt and fails unless the
// write completes within limit (a frozen filesystem blocks it).
func writeWithin(t *testing.T, mnt string, limit time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(filepath.Join(mnt, "probe"), []byte("x"), 0o600) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(limit):
		exec.Command("fsfreeze", "-u", mnt).Run() // do not leave the machine frozen
		t.Fatalf("a write to %s did not complete within %s: still frozen", mnt, limit)
	}
}

func TestMountsOf(t *testing.T) {
	img, mnt := ext4Mounted(t, t.TempDir())
	got, err := MountsOf(img)
	if err != nil || len(got) != 1 || got[0] != mnt {
		t.Errorf("MountsOf(%s) = %v, %v; want [%s]", img, got, err, mnt)
	}
}

// TestWatchdogThawsAfterDeath: the process that froze a filesystem dies
// (SIGKILL, so no deferred call runs); its watchdog thaws the filesystem.
func TestWatchdogThawsAfterDeath(t *testing.T) {
	_, mnt := ext4Mounted(t, t.TempDir())
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_FREEZE="+mnt)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "FROZEN") {
		cmd.Process.Kill()
		t.Fatalf("child did not freeze: %q", buf[:n])
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	writeWithin(t, mnt, 20*time.Second)
}

// TestFreezeTimer: a freeze nobody thaws is thawed after FreezeFor.
func TestFreezeTimer(t *testing.T) {
	_, mnt := ext4Mounted(t, t.TempDir())
	fz, err := freeze(t.Context(), []string{mnt}, Options{FreezeFor: time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer fz.thaw()
	writeWithin(t, mnt, 20*time.Second)
}

// TestHostTogether: two disks of one host, one on btrfs and one served by
// qemu-storage-daemon, written all along, are snapshotted in one freeze;
// both views are clean filesystems holding a prefix of their writer's
// records.
func TestHostTogether(t *testing.T) {
	dir := t.TempDir()
	bt := filepath.Join(dir, "btrfs")
	snapshottest.Btrfs(t, bt, 320<<20)
	os.MkdirAll(filepath.Join(bt, "images"), 0o755)
	img := filepath.Join(bt, "images", "disk.img")
	snapshottest.Ext4Image(t, img, 32<<20)
	m1 := filepath.Join(dir, "m1")
	snapshottest.Mount(t, snapshottest.Loop(t, img), m1)
	q := snapshottest.StartQSD(t, filepath.Join(dir), 32<<20)
	snapshottest.Run(t, "mkfs.ext4", "-q", "-F", q.Export)
	m2 := filepath.Join(dir, "m2")
	snapshottest.Mount(t, snapshottest.Loop(t, q.Export), m2)
	w1 := snapshottest.StartWriter(t, filepath.Join(m1, "log"))
	w2 := snapshottest.StartWriter(t, filepath.Join(m2, "log"))
	w1.WaitRecords(t, 200)
	w2.WaitRecords(t, 200)

	set, err := Take(t.Context(), []Disk{{Source: img}, {Source: q.Export, QMP: q.QMP, Node: q.Node}}, Options{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Release(context.Background())
	if !set.Consistent || len(set.Frozen) != 2 || set.Methods() != "reflink,qcow2-overlay" {
		t.Fatalf("set: consistent %v, frozen %v, methods %s: %s", set.Consistent, set.Frozen, set.Methods(), set.Note)
	}
	w1.WaitRecords(t, 400) // both go on writing after the instant
	w2.WaitRecords(t, 400)
	for i, v := range set.Views {
		if err := v.Check(); err != nil {
			t.Errorf("view %d: %v", i, err)
		}
		// Read the view into a plain file: e2fsck and debugfs want one.
		cp := filepath.Join(dir, fmt.Sprintf("view%d.img", i))
		snapshottest.Run(t, "cp", "--sparse=always", v.Path, cp)
		snapshottest.Fsck(t, cp)
		n := snapshottest.CheckRecords(t, snapshottest.FileFromExt4(t, cp, "/log"))
		live, _ := os.ReadFile(filepath.Join([]string{m1, m2}[i], "log"))
		if n == 0 || n*snapshottest.RecordSize >= len(live) {
			t.Errorf("view %d holds %d records, the live file %d bytes", i, n, len(live))
		}
	}
	if err := set.Release(t.Context()); err != nil {
		t.Error(err)
	}
	if left, _ := filepath.Glob(filepath.Join(bt, "images", ".ferry-snap-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestLVM runs only where the kernel has device-mapper: this is the one
// test that may not run in CI (these machines have none), and it says so.
func TestLVM(t *testing.T) {
	if err := DeviceMapper(); err != nil {
		t.Skipf("could not run: %v", err)
	}
	for _, tool := range []string{"pvcreate", "vgcreate", "lvcreate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("device-mapper is here but %s is not: install lvm2", tool)
		}
	}
	dir := t.TempDir()
	pv := filepath.Join(dir, "pv.img")
	f, _ := os.Create(pv)
	f.Truncate(256 << 20)
	f.Close()
	dev := snapshottest.Loop(t, pv)
	vg := fmt.Sprintf("ferrytest%d", os.Getpid())
	snapshottest.Run(t, "pvcreate", "-q", dev)
	snapshottest.Run(t, "vgcreate", "-q", vg, dev)
	t.Cleanup(func() { exec.Command("vgremove", "-f", vg).Run() })
	snapshottest.Run(t, "lvcreate", "-q", "-L", "64m", "-n", "root", vg)
	lv := "/dev/" + vg + "/root"
	snapshottest.Run(t, "mkfs.ext4", "-q", lv)
	mnt := filepath.Join(dir, "mnt")
	snapshottest.Mount(t, lv, mnt)
	w := snapshottest.StartWriter(t, filepath.Join(mnt, "log"))
	w.WaitRecords(t, 200)
	set, err := Take(t.Context(), []Disk{{Source: lv, Space: 32 << 20}}, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Release(context.Background())
	if !set.Consistent || set.Methods() != "lvm" {
		t.Fatalf("LVM set: %s (%s)", set.Methods(), set.Note)
	}
	cp := filepath.Join(dir, "view.img")
	snapshottest.Run(t, "dd", "if="+set.Views[0].Path, "of="+cp, "bs=1M", "status=none")
	snapshottest.Fsck(t, cp)
	snapshottest.CheckRecords(t, snapshottest.FileFromExt4(t, cp, "/log"))
}

func TestNoMethodSaysWhy(t *testing.T) {
	img := filepath.Join(t.TempDir(), "plain.img")
	os.WriteFile(img, make([]byte, 1<<20), 0o600)
	set, err := Take(t.Context(), []Disk{{Source: img}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if set.Consistent || set.Views[0].Path != img || !strings.Contains(set.Note, "read live") {
		t.Errorf("set over an image no method can snapshot: %+v", set)
	}
	for _, want := range []string{"qcow2-overlay: no QMP socket", "lvm:", "reflink: the filesystem holding"} {
		if !strings.Contains(set.Note, want) {
			t.Errorf("note %q does not say %q", set.Note, want)
		}
	}
	if err := DeviceMapper(); err != nil && !errors.Is(err, ErrUnsupported) {
		t.Error(err)
	}
}
