package local

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

func TestRecoveryPointRestoresByteIdentical(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	path := mustDisk(t, d, "web", 8*mib+12345) // a partial last block
	writeBlocks(t, path, 1, 0, 3, 4, 50, 100)
	// An allocated all-zero block and a tail that is not block-aligned.
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt(make([]byte, 64*kib), 10*64*kib)
	f.WriteAt([]byte("tail"), 8*mib+12340)
	f.Close()
	want1 := fileSHA(t, path)

	p1, err := d.CreateRecoveryPoint(ctx, "web", map[string]string{"sync": "1"})
	if err != nil {
		t.Fatal(err)
	}
	blocks, _, _ := d.StoreStats()
	if blocks != 6 { // 5 random blocks + the tail block; zeros never stored
		t.Errorf("store holds %d blocks, want 6", blocks)
	}
	writeBlocks(t, path, 2, 3, 7)
	want2 := fileSHA(t, path)
	p2, err := d.CreateRecoveryPoint(ctx, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want1 == want2 || p1.ManifestDigest == p2.ManifestDigest {
		t.Fatal("the disk change did not register")
	}
	if got := materialiseSHA(t, d, p1.ID); got != want1 {
		t.Errorf("point 1 restores to %s, want %s", got, want1)
	}
	if got := materialiseSHA(t, d, p2.ID); got != want2 {
		t.Errorf("point 2 restores to %s, want %s", got, want2)
	}
	// Points persist across a reopen, in order, with labels.
	d2 := mustNew(t, d.Dir(), nil)
	list, err := d2.ListRecoveryPoints(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]cloud.RecoveryPoint{p1, p2}, list); diff != "" {
		t.Errorf("points after reopen (-want +got):\n%s", diff)
	}
	if got := materialiseSHA(t, d2, p1.ID); got != want1 {
		t.Errorf("after reopen point 1 restores to %s", got)
	}
	// The source disk was only read.
	if fileSHA(t, path) != want2 {
		t.Error("taking points changed the source disk")
	}
}

func TestDedupAndSharedBlocksSurviveDeletion(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	path := mustDisk(t, d, "db", 64*mib) // 1024 blocks
	var all []int64
	for b := int64(0); b < 1024; b += 2 { // half the disk has data
		all = append(all, b)
	}
	writeBlocks(t, path, 1, all...)
	p1, err := d.CreateRecoveryPoint(ctx, "db", nil)
	if err != nil {
		t.Fatal(err)
	}
	n1, _, _ := d.StoreStats()
	changed := []int64{2, 200, 402, 600, 800} // ~1% of the data blocks
	writeBlocks(t, path, 9, changed...)
	want2 := fileSHA(t, path)
	p2, err := d.CreateRecoveryPoint(ctx, "db", nil)
	if err != nil {
		t.Fatal(err)
	}
	n2, _, _ := d.StoreStats()
	if n1 != 512 || n2-n1 != len(changed) {
		t.Errorf("blocks stored: %d then %d; want 512 then +%d", n1, n2, len(changed))
	}
	if p2.StoredBytes > int64(len(changed))*(64*kib+1) || p2.StoredBytes == 0 {
		t.Errorf("point 2 stored %d bytes for %d changed blocks", p2.StoredBytes, len(changed))
	}
	if err := d.DeleteRecoveryPoint(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	n3, _, _ := d.StoreStats()
	if n3 != 512 { // the 5 blocks only p1 had are gone, shared ones stay
		t.Errorf("after deleting point 1 the store holds %d blocks, want 512", n3)
	}
	if got := materialiseSHA(t, d, p2.ID); got != want2 {
		t.Error("point 2 no longer restores after point 1 was deleted")
	}
	if _, err := d.RecoveryPoint(ctx, p1.ID); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("deleted point: %v", err)
	}
}

func TestCancelledPointLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d := mustNew(t, "", nil)
	path := mustDisk(t, d, "db", 4*mib)
	writeBlocks(t, path, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	d.testHookAfterBlock = func(n int) {
		if n == 3 {
			cancel()
		}
	}
	if _, err := d.CreateRecoveryPoint(ctx, "db", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	d.testHookAfterBlock = nil
	assertEmptyStore(t, d)
}

func assertEmptyStore(t *testing.T, d *Driver) {
	t.Helper()
	if list, _ := d.ListRecoveryPoints(context.Background(), "db"); len(list) != 0 {
		t.Errorf("visible points: %+v", list)
	}
	if n, _, _ := d.StoreStats(); n != 0 {
		t.Errorf("%d unreferenced blocks left in the store", n)
	}
	for _, sub := range []string{"points", "meta/points", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(d.Dir(), sub))
		if len(ents) != 0 {
			t.Errorf("%s holds %d leftovers, e.g. %s", sub, len(ents), ents[0].Name())
		}
	}
}

// TestCrashHelper is the child process of TestKilledPointLeavesNothing.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("FERRY_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestKilledPointLeavesNothing")
	}
	d, err := New(dir, Options{BlockSize: 64 * kib, Mode: ModeCAS, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := strconv.Atoi(os.Getenv("FERRY_CRASH_AFTER"))
	d.testHookAfterBlock = func(n int) {
		if n == after {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	d.CreateRecoveryPoint(context.Background(), "db", nil)
	t.Fatal("the point completed; the crash hook never fired")
}

func TestKilledPointLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	d := mustNew(t, dir, nil)
	path := mustDisk(t, d, "db", 8*mib)
	var blocks []int64
	for b := int64(0); b < 128; b++ {
		blocks = append(blocks, b)
	}
	writeBlocks(t, path, 3, blocks...)
	want := fileSHA(t, path)
	d.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FERRY_CRASH_DIR="+dir, "FERRY_CRASH_AFTER=40")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
	}
	// Blocks were written (the crash was mid-way) but nothing is visible
	// after reopening, and the store is cleaned.
	d2 := mustNew(t, dir, nil)
	assertEmptyStore(t, d2)
	if fileSHA(t, path) != want {
		t.Fatal("the crash changed the source disk")
	}
	p, err := d2.CreateRecoveryPoint(context.Background(), "db", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := materialiseSHA(t, d2, p.ID); got != want {
		t.Error("a point taken after the crash does not restore the disk")
	}
}

func TestCorruptBlockIsDetected(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, "", nil)
	path := mustDisk(t, d, "db", 2*mib)
	writeBlocks(t, path, 1, 5)
	p, err := d.CreateRecoveryPoint(ctx, "db", nil)
	if err != nil {
		t.Fatal(err)
	}
	var blk string
	filepath.WalkDir(filepath.Join(d.Dir(), "blocks"), func(p string, e os.DirEntry, _ error) error {
		if !e.IsDir() {
			blk = p
		}
		return nil
	})
	b, _ := os.ReadFile(blk)
	b[len(b)/2] ^= 0xFF
	os.WriteFile(blk, b, 0o644)
	_, err = d.CreateMachine(ctx, cloud.MachineSpec{Token: "corrupt", Kind: cloud.LaunchTest, Points: []string{p.ID}})
	if !errors.Is(err, cloud.ErrCorrupt) {
		t.Fatalf("launch from a corrupted point: %v, want ErrCorrupt", err)
	}
	// Nothing half-made is left behind.
	ents, _ := os.ReadDir(filepath.Join(d.Dir(), "disks"))
	if len(ents) != 1 {
		t.Errorf("disks/ holds %d files after the failed launch, want only the source", len(ents))
	}
}

func TestRetentionWithInjectedClock(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	d := mustNew(t, "", c)
	path := mustDisk(t, d, "db", mib)
	var ids []string
	// Three points a day, 6 hours apart, for four days.
	for i := 0; i < 12; i++ {
		writeBlocks(t, path, uint64(i), int64(i%16))
		p, err := d.CreateRecoveryPoint(ctx, "db", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
		if i%3 == 2 {
			c.Add(16 * time.Hour)
		} else {
			c.Add(4 * time.Hour)
		}
	}
	// Points: day0 09,13,17 day1 09,13,17 day2 ... day3 09,13,17 (ids 0..11).
	newest := ids[11]
	want := materialiseSHA(t, d, newest)
	// The clock now reads day4 09:00; retention runs at day3 21:00.
	deleted, err := retain(t, d, "db", cloud.RetentionPolicy{KeepLast: 2, KeepDaily: 3}, c.Now().Add(-12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Keep: last 2 (10, 11), newest of day3 (11), day2 (8), day1 (5).
	wantDeleted := []string{ids[0], ids[1], ids[2], ids[3], ids[4], ids[6], ids[7], ids[9]}
	if diff := cmp.Diff(wantDeleted, deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	list, _ := d.ListRecoveryPoints(ctx, "db")
	var kept []string
	for _, p := range list {
		kept = append(kept, p.ID)
	}
	if diff := cmp.Diff([]string{ids[5], ids[8], ids[10], ids[11]}, kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	// A far-future retention keeps the newest no matter what.
	deleted, err = retain(t, d, "db", cloud.RetentionPolicy{KeepDaily: 1}, c.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 3 {
		t.Errorf("deleted %v, want all but the newest", deleted)
	}
	if got := materialiseSHA(t, d, newest); got != want {
		t.Error("the newest point no longer restores after retention")
	}
	if _, err := retain(t, d, "db", cloud.RetentionPolicy{}, c.Now()); !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("empty policy: %v, want ErrInvalid", err)
	}
}

// retain applies cloud.ApplyRetention to one disk's points, deleting
// through the driver.
func retain(t *testing.T, d *Driver, disk string, policy cloud.RetentionPolicy, now time.Time) ([]string, error) {
	t.Helper()
	pts, err := d.ListRecoveryPoints(context.Background(), disk)
	if err != nil {
		t.Fatal(err)
	}
	return cloud.ApplyRetention(context.Background(), pts, policy, now, nil,
		func(ctx context.Context, p cloud.RecoveryPoint) error { return d.DeleteRecoveryPoint(ctx, p.ID) })
}

// A point an active machine was launched from is kept whatever the policy.
func TestRetentionKeepsLaunchedPoints(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	d := mustNew(t, "", c)
	path := mustDisk(t, d, "db", mib)
	var ids []string
	for i := range 3 {
		writeBlocks(t, path, uint64(i), 0)
		p, err := d.CreateRecoveryPoint(ctx, "db", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
		c.Add(time.Hour)
	}
	m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "keep", Kind: cloud.LaunchTest, Points: []string{ids[0]}})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := retain(t, d, "db", cloud.RetentionPolicy{KeepLast: 1}, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{ids[1]}, deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if err := d.Terminate(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if deleted, _ := retain(t, d, "db", cloud.RetentionPolicy{KeepLast: 1}, c.Now()); !slices.Equal(deleted, []string{ids[0]}) {
		t.Errorf("after the machine went: deleted %v, want %v", deleted, ids[:1])
	}
}

func TestLooksIncompressible(t *testing.T) {
	random := make([]byte, mib)
	rand.NewChaCha8([32]byte{3}).Read(random)
	text := make([]byte, mib)
	for i := range text {
		text[i] = 'a' + random[i]%8
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want bool
	}{{"random", random, true}, {"3-bit text", text, false}, {"zeros", make([]byte, mib), false}, {"tiny", random[:100], false}} {
		if got := looksIncompressible(tt.b); got != tt.want {
			t.Errorf("%s: looksIncompressible = %v, want %v", tt.name, got, tt.want)
		}
	}
}
