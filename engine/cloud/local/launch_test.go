package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect/imagetest"
)

// realImage writes a GPT disk made by sfdisk into path: an EFI system
// partition (FAT32 boot sector), a root partition formatted by mkfs.ext4 and
// a swap partition formatted by mkswap.
func realImage(t *testing.T, path string) {
	t.Helper()
	sfdisk := imagetest.Need(t, "sfdisk", "fdisk")
	mkfs := imagetest.Need(t, "mkfs.ext4", "e2fsprogs")
	mkswap := imagetest.Need(t, "mkswap", "util-linux")
	cmd := exec.Command(sfdisk, "-q", path)
	cmd.Stdin = strings.NewReader("label: gpt\n" +
		"start=2048, size=4096, type=U, name=esp\n" +
		"start=6144, size=65536, type=L, name=root\n" +
		"start=71680, size=8192, type=S, name=swap\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	imagetest.Run(t, mkfs, "-q", "-F", "-L", "root", "-E", "offset="+strconv.Itoa(6144*512), path, "32M")
	swap := t.TempDir() + "/swap"
	os.WriteFile(swap, make([]byte, 4*mib), 0o644)
	imagetest.Run(t, mkswap, "-q", swap)
	sw, _ := os.ReadFile(swap)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt(imagetest.Superblock("fat32", "EFI")[:512], 2048*512)
	f.WriteAt(sw, 71680*512)
}

var ignoreVolatile = cmpopts.IgnoreFields(cloud.Instance{}, "ID", "DiskID", "CreatedAt")

func TestTestLaunchCutoverAndRollback(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	src := mustDisk(t, d, "web", 48*mib)
	realImage(t, src)
	p1, err := d.CreateRecoveryPoint(ctx, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	srcSHA := fileSHA(t, src)

	in, err := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchTest, RecoveryPointID: p1.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.Instance{Kind: cloud.LaunchTest, RecoveryPointID: p1.ID, SourceDiskID: "web", MigrationID: "m1", State: cloud.InstanceRunning,
		Checks: []cloud.Check{
			{Name: "materialise", Passed: true},
			{Name: "partition-table", Passed: true, Message: "gpt with 3 partitions"},
			{Name: "filesystem p1", Passed: true, Message: `fat32 (label "EFI")`},
			{Name: "filesystem p2", Passed: true, Message: `ext4 (label "root")`},
			{Name: "filesystem p3", Passed: true, Message: "swap"},
			{Name: "boot", Passed: true, Skipped: true, Message: "boot check not enabled"},
		}}
	ignoreMaterialiseMsg := cmp.FilterPath(func(p cmp.Path) bool { return strings.HasSuffix(p.GoString(), "Message") }, cmp.Comparer(func(a, b string) bool {
		return a == b || strings.Contains(a, "verified") || strings.Contains(b, "verified")
	}))
	if diff := cmp.Diff(want, in, ignoreVolatile, ignoreMaterialiseMsg); diff != "" {
		t.Errorf("test launch (-want +got):\n%s", diff)
	}
	launched, err := d.DiskPath(in.DiskID)
	if err != nil {
		t.Fatal(err)
	}
	if fileSHA(t, launched) != srcSHA {
		t.Error("the launched disk differs from the recovery point's bytes")
	}
	// The test copy is writable and independent: the source stays as it was.
	writeBlocks(t, launched, 42, 1, 2)
	if fileSHA(t, src) != srcSHA {
		t.Error("writing the test instance's disk changed the source")
	}
	if err := d.Terminate(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(launched); !os.IsNotExist(err) {
		t.Errorf("terminated instance's disk still exists: %v", err)
	}
	if err := d.Terminate(ctx, in.ID); err != nil {
		t.Errorf("second terminate: %v (want idempotent)", err)
	}

	// Replication goes on; a cutover must come from the newest point.
	writeBlocks(t, src, 7, 600)
	p2, err := d.CreateRecoveryPoint(ctx, "web", map[string]string{"final": "true"})
	if err != nil {
		t.Fatal(err)
	}
	srcSHA = fileSHA(t, src)
	if _, err := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchCutover, RecoveryPointID: p1.ID}); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("cutover from a stale point: %v, want ErrConflict", err)
	}
	live, err := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchCutover, RecoveryPointID: p2.ID})
	if err != nil {
		t.Fatal(err)
	}
	if live.State != cloud.InstanceLive || !live.Passed() {
		t.Fatalf("cutover instance: %+v", live)
	}
	if _, err := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchCutover, RecoveryPointID: p2.ID}); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("second cutover: %v, want ErrConflict", err)
	}
	if err := d.Terminate(ctx, live.ID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("terminate live: %v, want ErrConflict", err)
	}
	if err := d.DeleteDisk(ctx, live.DiskID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("delete the live disk: %v, want ErrConflict", err)
	}
	if err := d.DeleteRecoveryPoint(ctx, p2.ID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("delete the live point: %v, want ErrConflict", err)
	}
	pointsBefore, _ := d.ListRecoveryPoints(ctx, "web")

	// Rollback: the launched copy goes, the source and the points stay.
	if err := d.Rollback(ctx, live.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := d.Instance(ctx, live.ID)
	if got.State != cloud.InstanceRolledBack || got.DiskID != "" {
		t.Errorf("after rollback: %+v", got)
	}
	if _, err := d.Disk(ctx, live.DiskID); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("rolled-back disk: %v", err)
	}
	if fileSHA(t, src) != srcSHA {
		t.Error("rollback changed the source disk")
	}
	pointsAfter, _ := d.ListRecoveryPoints(ctx, "web")
	if diff := cmp.Diff(pointsBefore, pointsAfter); diff != "" {
		t.Errorf("rollback changed the recovery points (-before +after):\n%s", diff)
	}
	if got := materialiseSHA(t, d, p2.ID); got != srcSHA {
		t.Error("after rollback the final point no longer restores the source")
	}
	// After a rollback a new cutover is allowed, and state survives a reopen.
	again, err := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchCutover, RecoveryPointID: p2.ID})
	if err != nil || again.State != cloud.InstanceLive {
		t.Fatalf("cutover after rollback: %+v, %v", again, err)
	}
	d2 := mustNew(t, d.Dir(), nil)
	reopened, err := d2.Instance(ctx, again.ID)
	if diff := cmp.Diff(again, reopened); err != nil || diff != "" {
		t.Errorf("instance after reopen (-want +got): %v\n%s", err, diff)
	}
}

func TestLaunchReportsFailedChecks(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	// A disk with random bytes only: no table, no filesystem.
	src := mustDisk(t, d, "junk", 4*mib)
	writeBlocks(t, src, 1, 0, 1)
	p, _ := d.CreateRecoveryPoint(ctx, "junk", nil)
	in, err := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchTest, RecoveryPointID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if in.State != cloud.InstanceFailed || in.Passed() {
		t.Errorf("instance = %+v, want failed", in)
	}
	if c := in.Checks[1]; c.Name != "partition-table" || c.Passed || !strings.Contains(c.Message, "no MBR or GPT") {
		t.Errorf("partition check = %+v", c)
	}
	// A GPT partition without a filesystem is named in the message.
	src2 := mustDisk(t, d, "blank", 8*mib)
	f, _ := os.OpenFile(src2, os.O_RDWR, 0)
	imagetest.WriteGPT(f, 8*mib, []imagetest.Part{{Start: mib, Size: 2 * mib, GPTType: imagetest.GUIDLinux, Name: "data"}})
	f.Close()
	p2, _ := d.CreateRecoveryPoint(ctx, "blank", nil)
	in2, err := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchCutover, RecoveryPointID: p2.ID})
	if err != nil {
		t.Fatal(err)
	}
	if in2.State != cloud.InstanceFailed {
		t.Errorf("cutover with failed checks is %s, want failed (never live)", in2.State)
	}
	if c := in2.Checks[2]; c.Passed || !strings.Contains(c.Message, "partition 1") || !strings.Contains(c.Message, "no recognised filesystem") {
		t.Errorf("filesystem check = %+v", c)
	}
}

func TestTeardownRemovesEverythingOfTheMigration(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	a := mustDisk(t, d, "a", 2*mib) // migration m1
	writeBlocks(t, a, 1, 0, 1)
	if _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "b", SizeBytes: 2 * mib, MigrationID: "m2"}); err != nil {
		t.Fatal(err)
	}
	b, _ := d.DiskPath("b")
	writeBlocks(t, b, 1, 0) // shares block 0 with disk a
	pa, _ := d.CreateRecoveryPoint(ctx, "a", nil)
	pb, _ := d.CreateRecoveryPoint(ctx, "b", nil)
	in, _ := d.Launch(ctx, cloud.LaunchSpec{Kind: cloud.LaunchTest, RecoveryPointID: pa.ID})
	if err := d.Teardown(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		func() error { _, err := d.Disk(ctx, "a"); return err }(),
		func() error { _, err := d.RecoveryPoint(ctx, pa.ID); return err }(),
		func() error { _, err := d.Instance(ctx, in.ID); return err }(),
		func() error { _, err := d.Disk(ctx, in.DiskID); return err }(),
	} {
		if !errors.Is(err, cloud.ErrNotFound) {
			t.Errorf("after teardown: %v, want ErrNotFound", err)
		}
	}
	if n, _, _ := d.StoreStats(); n != 1 {
		t.Errorf("store holds %d blocks, want the 1 that m2's point uses", n)
	}
	if got := materialiseSHA(t, d, pb.ID); got != fileSHA(t, b) {
		t.Error("teardown of m1 broke m2's point")
	}
	if err := d.Teardown(ctx, "m1"); err != nil {
		t.Errorf("second teardown: %v (want idempotent)", err)
	}
}

func TestBootCheckWatchesTheConsole(t *testing.T) {
	sh := imagetest.Need(t, "sh", "dash")
	tests := []struct {
		name   string
		script string
		passed bool
		msg    string
	}{
		{"marker", `echo "SeaBIOS"; echo "Booting from Hard Disk..."; printf "debian login: "; sleep 60`, true, "login:"},
		{"exits without marker", `echo "No bootable device."; exit 1`, false, "No bootable device"},
		{"timeout", `echo "Booting..."; sleep 60`, false, "no boot marker within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, "", nil)
			d.boot = &BootOptions{Command: []string{sh, "-c", tt.script, "{disk}"}, Timeout: 2 * time.Second, Marker: regexp.MustCompile(`login:`)}
			c := d.bootCheck(context.Background(), "/nonexistent.img")
			if c.Passed != tt.passed || c.Skipped || !strings.Contains(c.Message, tt.msg) {
				t.Errorf("boot check = %+v, want passed=%v mentioning %q", c, tt.passed, tt.msg)
			}
		})
	}
	d := mustNew(t, "", nil)
	d.boot = &BootOptions{Command: []string{"ferry-no-such-emulator"}}
	if c := d.bootCheck(context.Background(), "x"); !c.Skipped || !c.Passed {
		t.Errorf("missing emulator: %+v, want skipped", c)
	}
}

// TestImportsStayInLane holds the provider rule: local imports engine/cloud
// and its inspect package, never a sibling provider or the data path.
func TestImportsStayInLane(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if !strings.HasPrefix(dep, "github.com/ferry-migrate/ferry/") {
			continue
		}
		switch strings.TrimPrefix(dep, "github.com/ferry-migrate/ferry/") {
		case "engine/cloud", "engine/cloud/inspect", "engine/cloud/local":
		default:
			t.Errorf("engine/cloud/local depends on %s", dep)
		}
	}
}

// A launch that crashed between making its disk and recording its instance
// leaves a disk owned by nobody; reopening removes it.
func TestOrphanLaunchDiskRemovedOnOpen(t *testing.T) {
	d := mustNew(t, "", nil)
	if _, err := d.createDisk(cloud.DiskSpec{ID: "i-ghost-disk", SizeBytes: mib}, "i-ghost", nil); err != nil {
		t.Fatal(err)
	}
	mustDisk(t, d, "kept", mib)
	d2 := mustNew(t, d.Dir(), nil)
	if _, err := d2.Disk(context.Background(), "i-ghost-disk"); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("orphan launch disk after reopen: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(d.diskFile("i-ghost-disk")); !os.IsNotExist(err) {
		t.Errorf("orphan image still on disk: %v", err)
	}
	if _, err := d2.Disk(context.Background(), "kept"); err != nil {
		t.Errorf("an ordinary disk was removed: %v", err)
	}
}
