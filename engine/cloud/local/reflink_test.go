package local

import (
	"context"
	"os"
	"testing"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// reflinkDir is a directory on a filesystem with FICLONE: FERRY_REFLINK_DIR
// (e.g. an XFS loop mount made with mkfs.xfs -m reflink=1), or the test temp
// dir when it happens to support it.
func reflinkDir(t *testing.T) string {
	if d := os.Getenv("FERRY_REFLINK_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "ferry-reflink-*")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if !reflinkSupported(dir) {
			t.Fatalf("FERRY_REFLINK_DIR=%s does not support FICLONE", d)
		}
		return dir
	}
	dir := t.TempDir()
	if !reflinkSupported(dir) {
		t.Skip("no FICLONE here; set FERRY_REFLINK_DIR to a reflink filesystem (XFS with reflink=1, Btrfs) to run")
	}
	return dir
}

func TestReflinkPoints(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	d, err := New(reflinkDir(t), Options{Clock: c.Now, Mode: ModeAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Mode() != ModeReflink {
		t.Fatalf("auto mode chose %s on a FICLONE filesystem", d.Mode())
	}
	src := mustDisk(t, d, "web", 48*mib)
	realImage(t, src)
	want1 := fileSHA(t, src)
	p1, err := d.CreateRecoveryPoint(ctx, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Method != "reflink" || p1.StoredBytes != 0 {
		t.Errorf("point = %+v, want a reflink storing nothing new", p1)
	}
	writeBlocks(t, src, 5, 700, 701)
	want2 := fileSHA(t, src)
	p2, err := d.CreateRecoveryPoint(ctx, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := materialiseSHA(t, d, p1.ID); got != want1 {
		t.Error("reflink point 1 does not restore the disk as it was")
	}
	if got := materialiseSHA(t, d, p2.ID); got != want2 {
		t.Error("reflink point 2 does not restore the disk as it was")
	}
	in, err := launch(ctx, d, cloud.LaunchTest, "reflink", p1.ID)
	if err != nil || in.State != cloud.MachineRunning {
		t.Fatalf("launch = %+v, %v", in, err)
	}
	launched, _ := d.DiskPath(in.Disks[0].DiskID)
	writeBlocks(t, launched, 9, 0)
	if fileSHA(t, src) != want2 || materialiseSHA(t, d, p1.ID) != want1 {
		t.Error("writing a cloned launch disk changed the source or the point")
	}
	if err := d.Rollback(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteRecoveryPoint(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Dir() + "/points/" + p1.ID + ".img"); !os.IsNotExist(err) {
		t.Errorf("deleted reflink copy still on disk: %v", err)
	}
	if got := materialiseSHA(t, d, p2.ID); got != want2 {
		t.Error("deleting point 1 broke point 2")
	}
}
