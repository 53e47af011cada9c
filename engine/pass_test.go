package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/engine/snapshot"
	"github.com/ferry-migrate/ferry/engine/snapshot/snapshottest"
)

// pointInTime runs one pass of disk (whose ext4 filesystem is mounted at
// mnt and written by a writer process all along) and checks the recovery
// point: e2fsck -fn is clean and the records file holds a prefix of the
// writer's sequence, shorter than what the writer went on to write.
func pointInTime(t *testing.T, g *testGateway, disk snapshot.Disk, mnt, id string, opt snapshot.Options) PassResult {
	t.Helper()
	w := snapshottest.StartWriter(t, filepath.Join(mnt, "log"))
	w.WaitRecords(t, 500)
	so := g.syncOptions(t, disk.Source, id)
	so.StateDir = filepath.Join(t.TempDir(), "state")
	res, err := RunPass(t.Context(), PassOptions{Disks: []PassDisk{{Sync: so, Snapshot: disk}}, Snapshot: opt, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	live, _ := os.ReadFile(filepath.Join(mnt, "log"))
	w.Stop()
	target := g.diskPath(id)
	snapshottest.Fsck(t, target)
	n := snapshottest.CheckRecords(t, snapshottest.FileFromExt4(t, target, "/log"))
	if n == 0 || n*snapshottest.RecordSize >= len(live) {
		t.Errorf("recovery point holds %d records; the writer had written %d bytes (%d records) by the end of the pass", n, len(live), len(live)/snapshottest.RecordSize)
	}
	cp, err := g.Checkpoint(id)
	if err != nil || cp.Consistency == nil || cp.Consistency.Consistent != res.Consistency.Consistent {
		t.Errorf("gateway recorded consistency %+v (err %v); the pass reported %+v", cp.Consistency, err, res.Consistency)
	}
	t.Logf("point in time: %d records; %+v", n, res.Consistency)
	return res
}

// TestPassPointInTimeBtrfs: an image file on btrfs, in a plain directory
// (reflink copy) and at the root of a subvolume (subvolume snapshot).
func TestPassPointInTimeBtrfs(t *testing.T) {
	for _, tc := range []struct{ sub, method string }{{"images", "reflink"}, {"", "btrfs-subvolume"}} {
		t.Run(tc.method, func(t *testing.T) {
			dir := t.TempDir()
			bt := filepath.Join(dir, "btrfs")
			snapshottest.Btrfs(t, bt, 320<<20)
			os.MkdirAll(filepath.Join(bt, tc.sub), 0o755)
			img := filepath.Join(bt, tc.sub, "disk.img")
			snapshottest.Ext4Image(t, img, 48<<20)
			mnt := filepath.Join(dir, "mnt")
			snapshottest.Mount(t, snapshottest.Loop(t, img), mnt)
			g := startGateway(t, GatewayOptions{Create: true})
			res := pointInTime(t, g, snapshot.Disk{Source: img}, mnt, "pit1", snapshot.Options{Dir: dir})
			if !res.Consistency.Consistent || res.Consistency.Method != tc.method || !strings.Contains(res.Consistency.Note, "froze "+mnt) {
				t.Errorf("pass on btrfs: %+v; want a consistent %s snapshot with %s frozen", res.Consistency, tc.method, mnt)
			}
			if left, _ := filepath.Glob(filepath.Join(bt, tc.sub, ".ferry-snap-*")); len(left) > 0 {
				t.Errorf("snapshots left behind: %v", left)
			}
		})
	}
}

func TestPassPointInTimeQCOW2(t *testing.T) {
	dir := t.TempDir()
	q := snapshottest.StartQSD(t, dir, 48<<20)
	snapshottest.Run(t, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", q.Export)
	mnt := filepath.Join(dir, "mnt")
	snapshottest.Mount(t, snapshottest.Loop(t, q.Export), mnt)
	g := startGateway(t, GatewayOptions{Create: true})
	res := pointInTime(t, g, snapshot.Disk{Source: q.Export, QMP: q.QMP, Node: q.Node}, mnt, "pit2", snapshot.Options{Dir: dir})
	if !res.Consistency.Consistent || res.Consistency.Method != "qcow2-overlay" {
		t.Errorf("pass on qemu-storage-daemon: %+v; want a consistent qcow2 overlay", res.Consistency)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".ferry-snap-*")); len(left) > 0 {
		t.Errorf("overlay files left behind: %v", left)
	}
}

// TestPassLiveSaysSo: where no snapshot can be taken (an image on a
// filesystem without reflinks, no QMP, no LVM) the pass reads live and the
// recorded state says it is not a point in time, and why.
func TestPassLiveSaysSo(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	snapshottest.Ext4Image(t, img, 16<<20)
	g := startGateway(t, GatewayOptions{Create: true})
	so := g.syncOptions(t, img, "live1")
	res, err := RunPass(t.Context(), PassOptions{Disks: []PassDisk{{Sync: so}}, Snapshot: snapshot.Options{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Consistency
	if c.Consistent || !strings.Contains(c.Note, "no snapshot of "+img) || !strings.Contains(c.Note, "no reflinks") {
		t.Errorf("live pass consistency %+v; want not consistent, saying why", c)
	}
	cp, _ := g.Checkpoint("live1")
	if cp.Consistency == nil || cp.Consistency.Consistent || cp.Consistency.Note != c.Note {
		t.Errorf("gateway recorded %+v; want the pass's not-consistent note", cp.Consistency)
	}
	// And a protocol 1 style sync without a word about consistency is
	// recorded as a live read too.
	runSync(t, g.syncOptions(t, img, "live2"))
	if cp, _ := g.Checkpoint("live2"); cp.Consistency == nil || cp.Consistency.Consistent {
		t.Errorf("plain sync recorded %+v", cp.Consistency)
	}
}

// TestPassSnapshotFills: the guest overwrites more than the snapshot's
// space while the pass reads it: the pass stops with ErrFilled, records no
// point in time, releases the overlay, and the guest goes on writing; a
// pass with room succeeds.
func TestPassSnapshotFills(t *testing.T) {
	dir := t.TempDir()
	q := snapshottest.StartQSD(t, dir, 48<<20)
	snapshottest.Run(t, "mkfs.ext4", "-q", "-F", q.Export)
	mnt := filepath.Join(dir, "mnt")
	snapshottest.Mount(t, snapshottest.Loop(t, q.Export), mnt)
	snapshottest.Run(t, "dd", "if=/dev/urandom", "of="+filepath.Join(mnt, "data"), "bs=1M", "count=12", "conv=fsync", "status=none")
	g := startGateway(t, GatewayOptions{Create: true})
	so := g.syncOptions(t, q.Export, "fill1")
	so.Rate = 2 << 20 // the pass takes a few seconds...
	w := snapshottest.StartWriter(t, filepath.Join(mnt, "log"))
	disk := snapshot.Disk{Source: q.Export, QMP: q.QMP, Node: q.Node, Space: 1 << 20}
	// ...while the guest rewrites its data file.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			snapshottest.Run(t, "dd", "if=/dev/urandom", "of="+filepath.Join(mnt, "data"), "bs=1M", "count=12", "conv=notrunc,fsync", "status=none")
		}
	}()
	_, err := RunPass(t.Context(), PassOptions{Disks: []PassDisk{{Sync: so, Snapshot: disk}}, Snapshot: snapshot.Options{Dir: dir}, Logf: t.Logf})
	close(stop)
	if !errors.Is(err, snapshot.ErrFilled) {
		t.Fatalf("pass over a filling snapshot: %v; want ErrFilled", err)
	}
	if cp, _ := g.Checkpoint("fill1"); cp.Verified {
		t.Error("a pass whose snapshot filled up was recorded as a proven state")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".ferry-snap-*")); len(left) > 0 {
		t.Errorf("overlay files left behind: %v", left)
	}
	w.WaitRecords(t, 1000) // the guest still writes
	w.Stop()
	disk.Space = 0
	so.Rate = 0
	if _, err := RunPass(t.Context(), PassOptions{Disks: []PassDisk{{Sync: so, Snapshot: disk}}, Snapshot: snapshot.Options{Dir: dir}}); err != nil {
		t.Fatalf("pass with room: %v", err)
	}
}
