package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

var ignoreVolatile = cmpopts.IgnoreFields(cloud.Machine{}, "ID", "CreatedAt", "Disks")

// launch creates and waits for a machine of the points.
func launch(ctx context.Context, d *Driver, kind cloud.LaunchKind, token string, points ...string) (cloud.Machine, error) {
	m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: token, Kind: kind, Points: points})
	if err != nil {
		return m, err
	}
	return d.Wait(ctx, m.ID)
}

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

	in, err := launch(ctx, d, cloud.LaunchTest, "test-1", p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.Machine{Token: "test-1", Kind: cloud.LaunchTest, MigrationID: "m1", State: cloud.MachineRunning, BootMode: cloud.BootBIOS,
		Checks: []cloud.Check{
			{Name: "materialise", Disk: "web", Passed: true},
			{Name: "partition-table", Disk: "web", Passed: true, Message: "gpt with 3 partitions"},
			{Name: "filesystem p1", Disk: "web", Passed: true, Message: `fat32 (label "EFI")`},
			{Name: "filesystem p2", Disk: "web", Passed: true, Message: `ext4 (label "root")`},
			{Name: "filesystem p3", Disk: "web", Passed: true, Message: "swap"},
			{Name: "boot", Passed: true, Skipped: true, Message: "boot check not enabled"},
		}}
	ignoreMaterialiseMsg := cmp.FilterPath(func(p cmp.Path) bool { return strings.HasSuffix(p.GoString(), "Message") }, cmp.Comparer(func(a, b string) bool {
		return a == b || strings.Contains(a, "verified") || strings.Contains(b, "verified")
	}))
	if diff := cmp.Diff(want, in, ignoreVolatile, ignoreMaterialiseMsg); diff != "" {
		t.Errorf("test launch (-want +got):\n%s", diff)
	}
	if len(in.Disks) != 1 || in.Disks[0].PointID != p1.ID || in.Disks[0].SourceDiskID != "web" || in.Disks[0].DiskID != in.ID+"-disk" {
		t.Errorf("machine disks %+v", in.Disks)
	}
	if again, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "test-1", Kind: cloud.LaunchTest, Points: []string{p1.ID}}); err != nil || again.ID != in.ID || again.State != cloud.MachineRunning {
		t.Errorf("CreateMachine with the same token: %+v, %v; want the same, settled machine", again, err)
	}
	launched, err := d.DiskPath(in.Disks[0].DiskID)
	if err != nil {
		t.Fatal(err)
	}
	if fileSHA(t, launched) != srcSHA {
		t.Error("the launched disk differs from the recovery point's bytes")
	}
	// The test copy is writable and independent: the source stays as it was.
	writeBlocks(t, launched, 42, 1, 2)
	if fileSHA(t, src) != srcSHA {
		t.Error("writing the test machine's disk changed the source")
	}
	if err := d.Terminate(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(launched); !os.IsNotExist(err) {
		t.Errorf("terminated machine's disk still exists: %v", err)
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
	if _, err := launch(ctx, d, cloud.LaunchCutover, "cut-stale", p1.ID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("cutover from a stale point: %v, want ErrConflict", err)
	}
	live, err := launch(ctx, d, cloud.LaunchCutover, "cut-1", p2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if live.State != cloud.MachineLive || !live.Passed() {
		t.Fatalf("cutover machine: %+v", live)
	}
	if _, err := launch(ctx, d, cloud.LaunchCutover, "cut-2", p2.ID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("second cutover: %v, want ErrConflict", err)
	}
	if _, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "cut-1", Kind: cloud.LaunchTest, Points: []string{p2.ID}}); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("a token reused for another spec: %v, want ErrConflict", err)
	}
	if err := d.Terminate(ctx, live.ID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("terminate live: %v, want ErrConflict", err)
	}
	if err := d.DeleteDisk(ctx, live.Disks[0].DiskID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("delete the live disk: %v, want ErrConflict", err)
	}
	if err := d.DeleteRecoveryPoint(ctx, p2.ID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("delete the live point: %v, want ErrConflict", err)
	}
	pointsBefore, _ := d.ListRecoveryPoints(ctx, "web")

	// Rollback: the launched copy goes, the source and the points stay.
	liveDisk := live.Disks[0].DiskID
	if err := d.Rollback(ctx, live.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := d.Machine(ctx, live.ID)
	if got.State != cloud.MachineRolledBack || got.Disks[0].DiskID != "" {
		t.Errorf("after rollback: %+v", got)
	}
	if _, err := d.Disk(ctx, liveDisk); !errors.Is(err, cloud.ErrNotFound) {
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
	again, err := launch(ctx, d, cloud.LaunchCutover, "cut-3", p2.ID)
	if err != nil || again.State != cloud.MachineLive {
		t.Fatalf("cutover after rollback: %+v, %v", again, err)
	}
	d2 := mustNew(t, d.Dir(), nil)
	reopened, err := d2.Machine(ctx, again.ID)
	if diff := cmp.Diff(again, reopened); err != nil || diff != "" {
		t.Errorf("machine after reopen (-want +got): %v\n%s", err, diff)
	}
	if ms, _ := d2.ListMachines(ctx, "m1"); len(ms) != 3 {
		t.Errorf("ListMachines: %d machines, want the 3 made (terminated test, rolled-back cutover, live cutover)", len(ms))
	}
}

// A host with two disks launches as one machine with both: each disk is
// materialised and checked, and the boot gets both, the boot disk first.
func TestTwoDiskMachine(t *testing.T) {
	ctx := context.Background()
	sh := imagetest.Need(t, "sh", "dash")
	d := mustNew(t, "", nil)
	root := mustDisk(t, d, "m1-vda", 48*mib)
	realImage(t, root)
	data := mustDisk(t, d, "m1-vdb", 8*mib)
	f, _ := os.OpenFile(data, os.O_RDWR, 0)
	f.WriteAt(imagetest.Superblock("ext4", "data"), 0)
	f.Close()
	pr, _ := d.CreateRecoveryPoint(ctx, "m1-vda", nil)
	pd, _ := d.CreateRecoveryPoint(ctx, "m1-vdb", nil)
	argsFile := filepath.Join(t.TempDir(), "argv")
	d.boot = &BootOptions{Command: []string{sh, "-c", `echo "$@" > ` + argsFile + `; echo "debian login: "`, "qemu", "{disks}"}, Timeout: 10 * time.Second}

	m, err := launch(ctx, d, cloud.LaunchCutover, "two", pr.ID, pd.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != cloud.MachineLive || len(m.Disks) != 2 {
		t.Fatalf("machine %+v, want live with two disks", m)
	}
	var names []string
	for _, c := range m.Checks {
		names = append(names, c.Disk+":"+c.Name)
	}
	want := []string{"m1-vda:materialise", "m1-vda:partition-table", "m1-vda:filesystem p1", "m1-vda:filesystem p2", "m1-vda:filesystem p3",
		"m1-vdb:materialise", "m1-vdb:partition-table", "m1-vdb:filesystem disk", ":boot"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	argv, _ := os.ReadFile(argsFile)
	if got, want := strings.TrimSpace(string(argv)), d.diskFile(m.Disks[0].DiskID)+" "+d.diskFile(m.Disks[1].DiskID); got != want {
		t.Errorf("boot got disks %q, want %q (the boot disk first)", got, want)
	}
	for i, src := range []string{root, data} {
		p, _ := d.DiskPath(m.Disks[i].DiskID)
		if fileSHA(t, p) != fileSHA(t, src) {
			t.Errorf("disk %d of the machine differs from its source", i)
		}
	}
	if _, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "dup", Kind: cloud.LaunchTest, Points: []string{pr.ID, pr.ID}}); !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("two points of one disk: %v, want ErrInvalid", err)
	}
	if _, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "uefi", Kind: cloud.LaunchTest, Points: []string{pr.ID}, BootMode: cloud.BootUEFI}); !errors.Is(err, cloud.ErrUnsupported) {
		t.Errorf("uefi with the (BIOS) boot check on: %v, want ErrUnsupported", err)
	}
	d.boot = nil
	if m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "uefi", Kind: cloud.LaunchTest, Points: []string{pr.ID}, BootMode: cloud.BootUEFI}); err != nil || m.BootMode != cloud.BootUEFI {
		t.Errorf("uefi without a boot: %+v, %v; want a machine (nothing boots, the firmware does not matter)", m, err)
	}
}

// A crash in the middle of CreateMachine leaves a machine in state creating
// with the disks made so far; after a reopen the same token finishes it and
// the disk made before the crash is not made again.
func TestCreateMachineResumesAfterCrash(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	a := mustDisk(t, d, "a", 2*mib)
	writeBlocks(t, a, 1, 0, 3)
	b := mustDisk(t, d, "b", 2*mib)
	writeBlocks(t, b, 2, 1, 5)
	pa, _ := d.CreateRecoveryPoint(ctx, "a", nil)
	pb, _ := d.CreateRecoveryPoint(ctx, "b", nil)
	spec := cloud.MachineSpec{Token: "crash", Kind: cloud.LaunchTest, Points: []string{pa.ID, pb.ID}}
	// As far as a crash during the second disk gets: the machine recorded,
	// the first disk made.
	id := machineID(spec.Token)
	pma, _ := d.point(pa.ID)
	if _, err := d.reserveMachine(id, spec, []pointMeta{pma, {RecoveryPoint: cloud.RecoveryPoint{ID: pb.ID, DiskID: "b"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.createDisk(cloud.DiskSpec{ID: machineDiskID(id, 0), SizeBytes: pma.SizeBytes}, id, func(f *os.File) error { return d.materialise(ctx, pma, f) }); err != nil {
		t.Fatal(err)
	}
	first, _ := d.Disk(ctx, machineDiskID(id, 0))

	d2 := mustNew(t, d.Dir(), nil)
	if m, _ := d2.Machine(ctx, id); m.State != cloud.MachineCreating {
		t.Fatalf("after reopen: %+v, want creating", m)
	}
	if _, err := d2.Wait(ctx, id); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("Wait on a machine still creating: %v, want ErrConflict", err)
	}
	m, err := d2.CreateMachine(ctx, spec)
	if err != nil || m.State != cloud.MachineStarting {
		t.Fatalf("resumed CreateMachine: %+v, %v", m, err)
	}
	if again, _ := d2.Disk(ctx, machineDiskID(id, 0)); !again.CreatedAt.Equal(first.CreatedAt) {
		t.Error("the disk made before the crash was made again")
	}
	m, err = d2.Wait(ctx, id)
	if err != nil || m.State.Active() != true {
		t.Fatalf("Wait: %+v, %v", m, err)
	}
	for i, src := range []string{a, b} {
		p, _ := d2.DiskPath(m.Disks[i].DiskID)
		if fileSHA(t, p) != fileSHA(t, src) {
			t.Errorf("disk %d differs from its source", i)
		}
	}
}

// Instances written by versions before machines load as one-disk machines.
func TestLegacyInstancesLoadAsMachines(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	src := mustDisk(t, d, "web", 2*mib)
	writeBlocks(t, src, 1, 0)
	p, _ := d.CreateRecoveryPoint(ctx, "web", nil)
	if _, err := d.createDisk(cloud.DiskSpec{ID: "i-old-disk", SizeBytes: 2 * mib, MigrationID: "m1"}, "i-old", nil); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(d.Dir(), "meta/instances"), 0o755)
	old := `{"ID":"i-old","Kind":"test","RecoveryPointID":"` + p.ID + `","SourceDiskID":"web","DiskID":"i-old-disk","MigrationID":"m1","State":"running"}`
	if err := os.WriteFile(filepath.Join(d.Dir(), "meta/instances/i-old.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := mustNew(t, d.Dir(), nil)
	m, err := d2.Machine(ctx, "i-old")
	if err != nil || m.State != cloud.MachineRunning || len(m.Disks) != 1 || m.Disks[0].DiskID != "i-old-disk" || m.Disks[0].PointID != p.ID {
		t.Fatalf("legacy instance as machine: %+v, %v", m, err)
	}
	if _, err := d2.Disk(ctx, "i-old-disk"); err != nil {
		t.Errorf("the legacy instance's disk was taken for an orphan: %v", err)
	}
	if err := d2.Terminate(ctx, "i-old"); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Disk(ctx, "i-old-disk"); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("terminated legacy machine's disk: %v", err)
	}
}

func TestLaunchReportsFailedChecks(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	// A disk with random bytes only: no table, no filesystem.
	src := mustDisk(t, d, "junk", 4*mib)
	writeBlocks(t, src, 1, 0, 1)
	p, _ := d.CreateRecoveryPoint(ctx, "junk", nil)
	in, err := launch(ctx, d, cloud.LaunchTest, "junk", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in.State != cloud.MachineFailed || in.Passed() {
		t.Errorf("machine = %+v, want failed", in)
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
	in2, err := launch(ctx, d, cloud.LaunchCutover, "blank", p2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in2.State != cloud.MachineFailed {
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
	in, _ := launch(ctx, d, cloud.LaunchTest, "td", pa.ID)
	if err := d.Teardown(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		func() error { _, err := d.Disk(ctx, "a"); return err }(),
		func() error { _, err := d.RecoveryPoint(ctx, pa.ID); return err }(),
		func() error { _, err := d.Machine(ctx, in.ID); return err }(),
		func() error { _, err := d.Disk(ctx, in.Disks[0].DiskID); return err }(),
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
			c := d.bootCheck(context.Background(), []string{"/nonexistent.img"}, cloud.Shape{})
			if c.Passed != tt.passed || c.Skipped || !strings.Contains(c.Message, tt.msg) {
				t.Errorf("boot check = %+v, want passed=%v mentioning %q", c, tt.passed, tt.msg)
			}
		})
	}
	d := mustNew(t, "", nil)
	d.boot = &BootOptions{Command: []string{"ferry-no-such-emulator"}}
	if c := d.bootCheck(context.Background(), []string{"x"}, cloud.Shape{}); !c.Skipped || !c.Passed {
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
		case "engine/cloud", "engine/cloud/inspect", "engine/cloud/local",
			"engine/vm", "engine/adapt", "engine/health": // the machinery of real boots (issue 16)
		default:
			t.Errorf("engine/cloud/local depends on %s", dep)
		}
	}
}

// A disk made by a launch whose machine does not exist (an older version
// crashed between the two) is owned by nobody; reopening removes it.
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
