// Package drivertest is the conformance suite of the engine/cloud contract.
// Every provider runs it from its own tests, against the real thing or an
// emulator of the cloud's API:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Harness{Open: ..., Write: ..., Read: ...})
//	}
//
// It checks what the migration steps rely on: error kinds, idempotency
// (CreateMachine per token, Wait, Terminate, Rollback, Teardown, the
// gateway calls), that a machine takes all the disks of a host at once and
// its disks hold the points' bytes, the cutover rules, and that retention
// through cloud.ApplyRetention keeps what a machine uses.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect/imagetest"
)

// Harness is what the suite needs from a provider's test.
type Harness struct {
	// Open returns a driver over a fresh, empty cloud; the test cleans up.
	Open func(t *testing.T) cloud.Driver
	// Write stores b at off in a target disk the way the data path does
	// (through the gateway endpoint PrepareGateway returned).
	Write func(t *testing.T, d cloud.Driver, ep cloud.GatewayEndpoint, off int64, b []byte)
	// Read returns the whole content of a disk (a target or a machine's).
	Read func(t *testing.T, d cloud.Driver, diskID string) []byte
	// Provider and Account, when set, run the account check.
	Provider cloud.Provider
	Account  cloud.Account
}

const mib = 1 << 20

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, h Harness) {
	t.Run("Errors", func(t *testing.T) { testErrors(t, h) })
	t.Run("Disks", func(t *testing.T) { testDisks(t, h) })
	t.Run("Gateways", func(t *testing.T) { testGateways(t, h) })
	t.Run("Points", func(t *testing.T) { testPoints(t, h) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, h) })
	t.Run("Machines", func(t *testing.T) { testMachines(t, h) })
	t.Run("TwoDiskMachine", func(t *testing.T) { testTwoDiskMachine(t, h) })
	t.Run("Cutover", func(t *testing.T) { testCutover(t, h) })
	t.Run("Teardown", func(t *testing.T) { testTeardown(t, h) })
	t.Run("Capabilities", func(t *testing.T) { testCapabilities(t, h) })
	if h.Provider != nil {
		t.Run("Check", func(t *testing.T) { testCheck(t, h) })
	}
}

// disk creates a target disk holding a GPT with one ext4 partition and
// random data, written through the gateway endpoint; it returns the bytes.
func disk(t *testing.T, h Harness, d cloud.Driver, id, migration string, size int64) []byte {
	t.Helper()
	ctx := context.Background()
	if _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: id, SizeBytes: size, MigrationID: migration}); err != nil {
		t.Fatalf("CreateDisk %s: %v", id, err)
	}
	ep, err := d.PrepareGateway(ctx, id)
	if err != nil {
		t.Fatalf("PrepareGateway %s: %v", id, err)
	}
	img := &memDisk{b: make([]byte, size)}
	if err := imagetest.WriteGPT(img, size, []imagetest.Part{{Start: mib, Size: size - 2*mib, GPTType: imagetest.GUIDLinux, Name: "root"}}); err != nil {
		t.Fatal(err)
	}
	copy(img.b[mib:], imagetest.Superblock("ext4", id))
	rand.Read(img.b[mib+64<<10 : mib+192<<10])
	h.Write(t, d, ep, 0, img.b)
	return img.b
}

type memDisk struct{ b []byte }

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

func overwrite(t *testing.T, h Harness, d cloud.Driver, id string, off int64, b []byte, content []byte) {
	t.Helper()
	ep, err := d.PrepareGateway(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(t, d, ep, off, b)
	copy(content[off:], b)
}

func point(t *testing.T, d cloud.Driver, diskID string) cloud.RecoveryPoint {
	t.Helper()
	p, err := d.CreateRecoveryPoint(context.Background(), diskID, map[string]string{"suite": "drivertest"})
	if err != nil {
		t.Fatalf("CreateRecoveryPoint %s: %v", diskID, err)
	}
	return p
}

// launch creates and waits for a machine.
func launch(t *testing.T, d cloud.Driver, kind cloud.LaunchKind, token string, points ...string) (cloud.Machine, error) {
	t.Helper()
	ctx := context.Background()
	m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: token, Kind: kind, MigrationID: "mt", Points: points})
	if err != nil {
		return m, err
	}
	return d.Wait(ctx, m.ID)
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want %v", what, err, kind)
	}
}

func testErrors(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	cases := []struct {
		what string
		err  error
		kind error
	}{
		{"disk of a bad id", func() error { _, err := d.Disk(ctx, "../x"); return err }(), cloud.ErrInvalid},
		{"unknown disk", func() error { _, err := d.Disk(ctx, "nope"); return err }(), cloud.ErrNotFound},
		{"empty disk", func() error { _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "z", SizeBytes: 0}); return err }(), cloud.ErrInvalid},
		{"resize unknown", func() error { _, err := d.ResizeDisk(ctx, "nope", mib); return err }(), cloud.ErrNotFound},
		{"delete unknown disk", d.DeleteDisk(ctx, "nope"), cloud.ErrNotFound},
		{"point of unknown disk", func() error { _, err := d.CreateRecoveryPoint(ctx, "nope", nil); return err }(), cloud.ErrNotFound},
		{"unknown point", func() error { _, err := d.RecoveryPoint(ctx, "rp-nope"); return err }(), cloud.ErrNotFound},
		{"delete unknown point", d.DeleteRecoveryPoint(ctx, "rp-nope"), cloud.ErrNotFound},
		{"unknown machine", func() error { _, err := d.Machine(ctx, "i-nope"); return err }(), cloud.ErrNotFound},
		{"wait unknown", func() error { _, err := d.Wait(ctx, "i-nope"); return err }(), cloud.ErrNotFound},
		{"terminate unknown", d.Terminate(ctx, "i-nope"), cloud.ErrNotFound},
		{"rollback unknown", d.Rollback(ctx, "i-nope"), cloud.ErrNotFound},
		{"machine of unknown point", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "t", Kind: cloud.LaunchTest, Points: []string{"rp-nope"}})
			return err
		}(), cloud.ErrNotFound},
		{"machine of no point", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "t", Kind: cloud.LaunchTest})
			return err
		}(), cloud.ErrInvalid},
		{"machine of a bad kind", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "t", Kind: "boot", Points: []string{"rp-nope"}})
			return err
		}(), cloud.ErrInvalid},
		{"machine without a token", func() error {
			_, err := d.CreateMachine(ctx, cloud.MachineSpec{Kind: cloud.LaunchTest, Points: []string{"rp-nope"}})
			return err
		}(), cloud.ErrInvalid},
		{"gateway of unknown disk", func() error { _, err := d.PrepareGateway(ctx, "nope"); return err }(), cloud.ErrNotFound},
		{"teardown of no migration", d.Teardown(ctx, ""), cloud.ErrInvalid},
	}
	for _, c := range cases {
		wantKind(t, c.what, c.err, c.kind)
	}
}

func testDisks(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	got, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "web-sda", SizeBytes: 4 * mib, MigrationID: "m7"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "web-sda" || got.SizeBytes != 4*mib || got.MigrationID != "m7" {
		t.Errorf("CreateDisk = %+v", got)
	}
	if b := h.Read(t, d, "web-sda"); int64(len(b)) != 4*mib || !bytes.Equal(b, make([]byte, 4*mib)) {
		t.Error("a new disk does not read as zeros of its size")
	}
	_, err = d.CreateDisk(ctx, cloud.DiskSpec{ID: "web-sda", SizeBytes: mib})
	wantKind(t, "second disk of the same id", err, cloud.ErrConflict)
	if got, err := d.ResizeDisk(ctx, "web-sda", 6*mib); err != nil || got.SizeBytes != 6*mib {
		t.Errorf("grow: %+v, %v", got, err)
	}
	_, err = d.ResizeDisk(ctx, "web-sda", mib)
	wantKind(t, "shrink", err, cloud.ErrInvalid)
	if got, err := d.Disk(ctx, "web-sda"); err != nil || got.SizeBytes != 6*mib {
		t.Errorf("Disk after grow: %+v, %v", got, err)
	}
	if err := d.DeleteDisk(ctx, "web-sda"); err != nil {
		t.Fatal(err)
	}
	_, err = d.Disk(ctx, "web-sda")
	wantKind(t, "deleted disk", err, cloud.ErrNotFound)
}

func testGateways(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	if _, err := d.CreateDisk(ctx, cloud.DiskSpec{ID: "gw", SizeBytes: 2 * mib}); err != nil {
		t.Fatal(err)
	}
	ep, err := d.PrepareGateway(ctx, "gw")
	if err != nil {
		t.Fatal(err)
	}
	if ep.DiskID != "gw" || ep.SizeBytes != 2*mib || (ep.Path == "") == (ep.URL == "") {
		t.Errorf("endpoint %+v: want the disk, its size and exactly one of Path and URL", ep)
	}
	if inProc := d.Capabilities().GatewayInProcess; inProc != (ep.Path != "") {
		t.Errorf("Capabilities.GatewayInProcess %v but the endpoint is %+v", inProc, ep)
	}
	if ep.URL != "" && ep.Fingerprint == "" {
		t.Errorf("a remote gateway endpoint without a certificate fingerprint: %+v", ep)
	}
	again, err := d.PrepareGateway(ctx, "gw")
	if err != nil || again != ep {
		t.Errorf("second PrepareGateway: %+v, %v; want the same endpoint", again, err)
	}
	for range 2 {
		if err := d.ReleaseGateway(ctx, "gw"); err != nil {
			t.Errorf("ReleaseGateway: %v (want idempotent)", err)
		}
	}
}

func testPoints(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	want1 := disk(t, h, d, "db", "m1", 4*mib)
	p1 := point(t, d, "db")
	if p1.DiskID != "db" || p1.SizeBytes != 4*mib || p1.ManifestDigest == "" || p1.Labels["suite"] != "drivertest" {
		t.Errorf("point %+v", p1)
	}
	overwrite(t, h, d, "db", 2*mib, bytes.Repeat([]byte{0xAB}, 64<<10), slices.Clone(want1))
	p2 := point(t, d, "db")
	if p2.ManifestDigest == p1.ManifestDigest {
		t.Error("two points of different bytes have the same digest")
	}
	list, err := d.ListRecoveryPoints(ctx, "db")
	if err != nil || len(list) != 2 || list[0].ID != p1.ID || list[1].ID != p2.ID {
		t.Fatalf("ListRecoveryPoints = %v, %v; want p1, p2 oldest first", list, err)
	}
	// A point is immutable: the first still holds the first bytes.
	m, err := launch(t, d, cloud.LaunchTest, "points-p1", p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Read(t, d, m.Disks[0].DiskID); !bytes.Equal(got, want1) {
		t.Error("a machine of the first point does not hold the bytes the disk had then")
	}
	err = d.DeleteRecoveryPoint(ctx, p1.ID)
	wantKind(t, "delete a point an active machine uses", err, cloud.ErrConflict)
	if err := d.Terminate(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteRecoveryPoint(ctx, p1.ID); err != nil {
		t.Fatal(err)
	}
	_, err = d.RecoveryPoint(ctx, p1.ID)
	wantKind(t, "deleted point", err, cloud.ErrNotFound)
	if got, err := d.RecoveryPoint(ctx, p2.ID); err != nil || got.ID != p2.ID {
		t.Errorf("the other point after a delete: %+v, %v", got, err)
	}
	if list, err := d.ListRecoveryPoints(ctx, "no-such-disk"); err != nil || len(list) != 0 {
		t.Errorf("points of an unknown disk: %v, %v; want none, no error", list, err)
	}
}

func testRetention(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	content := disk(t, h, d, "ret", "m1", 2*mib)
	var ids []string
	for i := range 4 {
		overwrite(t, h, d, "ret", int64(i)*4096, []byte{byte(i + 1)}, content)
		ids = append(ids, point(t, d, "ret").ID)
	}
	m, err := launch(t, d, cloud.LaunchTest, "retention-pin", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	pts, _ := d.ListRecoveryPoints(ctx, "ret")
	deleted, err := cloud.ApplyRetention(ctx, pts, cloud.RetentionPolicy{KeepLast: 1}, time.Now().Add(time.Hour), nil,
		func(ctx context.Context, p cloud.RecoveryPoint) error { return d.DeleteRecoveryPoint(ctx, p.ID) })
	if err != nil {
		t.Fatal(err)
	}
	if want := ids[1:3]; !slices.Equal(deleted, want) {
		t.Errorf("retention deleted %v, want %v (the machine's point and the newest kept)", deleted, want)
	}
	pts, _ = d.ListRecoveryPoints(ctx, "ret")
	if len(pts) != 2 || pts[0].ID != ids[0] || pts[1].ID != ids[3] {
		t.Errorf("kept %v", pts)
	}
	d.Terminate(ctx, m.ID)
}

func testMachines(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	want := disk(t, h, d, "app", "mt", 4*mib)
	p := point(t, d, "app")
	spec := cloud.MachineSpec{Token: "launch-1", Kind: cloud.LaunchTest, MigrationID: "mt", Points: []string{p.ID}}
	m, err := d.CreateMachine(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == "" || m.Token != spec.Token || m.Kind != cloud.LaunchTest || m.MigrationID != "mt" || len(m.Disks) != 1 || m.Disks[0].PointID != p.ID {
		t.Errorf("CreateMachine = %+v", m)
	}
	if m.State != cloud.MachineStarting && !m.State.Settled() {
		t.Errorf("CreateMachine returned state %s; want it created (starting or settled)", m.State)
	}
	again, err := d.CreateMachine(ctx, spec)
	if err != nil || again.ID != m.ID {
		t.Errorf("CreateMachine with the same token: %+v, %v; want machine %s again", again, err, m.ID)
	}
	_, err = d.CreateMachine(ctx, cloud.MachineSpec{Token: "launch-1", Kind: cloud.LaunchTest, MigrationID: "mt", Points: []string{p.ID, "rp-other"}})
	if !errors.Is(err, cloud.ErrConflict) && !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("the token again with other points: %v, want ErrConflict", err)
	}
	m, err = d.Wait(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != cloud.MachineRunning || !m.Passed() || len(m.Checks) == 0 {
		t.Fatalf("Wait = %+v; want running with passed checks", m)
	}
	if w2, err := d.Wait(ctx, m.ID); err != nil || w2.State != m.State {
		t.Errorf("second Wait: %+v, %v", w2, err)
	}
	if got := h.Read(t, d, m.Disks[0].DiskID); !bytes.Equal(got, want) {
		t.Error("the machine's disk does not hold the point's bytes")
	}
	// The launched copy is its own: writing the source leaves it alone.
	overwrite(t, h, d, "app", 0, bytes.Repeat([]byte{1}, 4096), make([]byte, 4*mib))
	if got := h.Read(t, d, m.Disks[0].DiskID); !bytes.Equal(got, want) {
		t.Error("writing the source disk changed the launched copy")
	}
	list, err := d.ListMachines(ctx, "mt")
	if err != nil || len(list) != 1 || list[0].ID != m.ID {
		t.Errorf("ListMachines = %v, %v", list, err)
	}
	for range 2 {
		if err := d.Terminate(ctx, m.ID); err != nil {
			t.Errorf("Terminate: %v (want idempotent)", err)
		}
	}
	if got, _ := d.Machine(ctx, m.ID); got.State != cloud.MachineTerminated || got.State.Active() {
		t.Errorf("after Terminate: %+v", got)
	}
	_, err = d.Disk(ctx, m.Disks[0].DiskID)
	wantKind(t, "a terminated machine's disk", err, cloud.ErrNotFound)
	if got, err := d.Disk(ctx, "app"); err != nil || got.ID != "app" {
		t.Errorf("the source disk after Terminate: %v", err)
	}
}

func testTwoDiskMachine(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	if max := d.Capabilities().MaxDisksPerMachine; max != 0 && max < 2 {
		t.Fatalf("Capabilities.MaxDisksPerMachine %d: a host with two disks must launch as one machine", max)
	}
	root := disk(t, h, d, "two-vda", "mt", 4*mib)
	data := disk(t, h, d, "two-vdb", "mt", 3*mib)
	pr, pd := point(t, d, "two-vda"), point(t, d, "two-vdb")
	m, err := launch(t, d, cloud.LaunchTest, "two-disks", pr.ID, pd.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Disks) != 2 || m.Disks[0].SourceDiskID != "two-vda" || m.Disks[1].SourceDiskID != "two-vdb" {
		t.Fatalf("machine disks %+v: want both, the boot disk first", m.Disks)
	}
	if !m.Passed() {
		t.Errorf("checks of a two-disk machine: %+v", m.Checks)
	}
	for i, want := range [][]byte{root, data} {
		if got := h.Read(t, d, m.Disks[i].DiskID); !bytes.Equal(got, want) {
			t.Errorf("disk %d of the machine does not hold its point's bytes", i)
		}
	}
	seen := map[string]bool{}
	for _, c := range m.Checks {
		seen[c.Disk] = true
	}
	if !seen["two-vda"] || !seen["two-vdb"] {
		t.Errorf("checks name the disks %v; want checks of both", seen)
	}
	_, err = d.CreateMachine(ctx, cloud.MachineSpec{Token: "two-same", Kind: cloud.LaunchTest, Points: []string{pr.ID, pr.ID}})
	wantKind(t, "a machine of one disk twice", err, cloud.ErrInvalid)
	if err := d.Rollback(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	for _, md := range m.Disks {
		_, err := d.Disk(ctx, md.DiskID)
		wantKind(t, "a rolled-back machine's disk", err, cloud.ErrNotFound)
	}
}

func testCutover(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	content := disk(t, h, d, "cut", "mt", 4*mib)
	old := point(t, d, "cut")
	overwrite(t, h, d, "cut", 3*mib, bytes.Repeat([]byte{7}, 8192), content)
	final := point(t, d, "cut")
	_, err := launch(t, d, cloud.LaunchCutover, "cut-stale", old.ID)
	wantKind(t, "cutover from a point that is not the newest", err, cloud.ErrConflict)
	live, err := launch(t, d, cloud.LaunchCutover, "cut-1", final.ID)
	if err != nil {
		t.Fatal(err)
	}
	if live.State != cloud.MachineLive {
		t.Fatalf("cutover machine is %s, want live", live.State)
	}
	if got := h.Read(t, d, live.Disks[0].DiskID); !bytes.Equal(got, content) {
		t.Error("the live machine does not hold the final point's bytes")
	}
	_, err = launch(t, d, cloud.LaunchCutover, "cut-2", final.ID)
	wantKind(t, "a second live machine of the disk", err, cloud.ErrConflict)
	if again, err := launch(t, d, cloud.LaunchCutover, "cut-1", final.ID); err != nil || again.ID != live.ID || again.State != cloud.MachineLive {
		t.Errorf("the cutover's own token again: %+v, %v; want the live machine", again, err)
	}
	wantKind(t, "terminate the live machine", d.Terminate(ctx, live.ID), cloud.ErrConflict)
	for range 2 {
		if err := d.Rollback(ctx, live.ID); err != nil {
			t.Errorf("Rollback: %v (want idempotent)", err)
		}
	}
	if got, _ := d.Machine(ctx, live.ID); got.State != cloud.MachineRolledBack {
		t.Errorf("after Rollback: %s", got.State)
	}
	if got := h.Read(t, d, "cut"); !bytes.Equal(got, content) {
		t.Error("rollback changed the source disk")
	}
	if _, err := launch(t, d, cloud.LaunchCutover, "cut-3", final.ID); err != nil {
		t.Errorf("a cutover after a rollback: %v", err)
	}
}

func testTeardown(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.Open(t)
	disk(t, h, d, "td-a", "m1", 2*mib)
	kept := disk(t, h, d, "td-b", "m2", 2*mib)
	pa, pb := point(t, d, "td-a"), point(t, d, "td-b")
	m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: "td", Kind: cloud.LaunchTest, MigrationID: "m1", Points: []string{pa.ID}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.Teardown(ctx, "m1"); err != nil {
			t.Fatalf("Teardown: %v (want idempotent)", err)
		}
	}
	for what, err := range map[string]error{
		"disk":    func() error { _, err := d.Disk(ctx, "td-a"); return err }(),
		"point":   func() error { _, err := d.RecoveryPoint(ctx, pa.ID); return err }(),
		"machine": func() error { _, err := d.Machine(ctx, m.ID); return err }(),
	} {
		wantKind(t, fmt.Sprintf("the torn-down migration's %s", what), err, cloud.ErrNotFound)
	}
	if ms, _ := d.ListMachines(ctx, "m1"); len(ms) != 0 {
		t.Errorf("machines after teardown: %v", ms)
	}
	if _, err := d.RecoveryPoint(ctx, pb.ID); err != nil {
		t.Errorf("another migration's point after teardown: %v", err)
	}
	if got := h.Read(t, d, "td-b"); !bytes.Equal(got, kept) {
		t.Error("teardown changed another migration's disk")
	}
}

func testCapabilities(t *testing.T, h Harness) {
	c := h.Open(t).Capabilities()
	if len(c.BootModes) == 0 {
		t.Error("Capabilities.BootModes is empty")
	}
	for _, b := range c.BootModes {
		if b != cloud.BootBIOS && b != cloud.BootUEFI {
			t.Errorf("unknown boot mode %q", b)
		}
	}
	if c.PointMethod == "" {
		t.Error("Capabilities.PointMethod is empty")
	}
}

func testCheck(t *testing.T, h Harness) {
	checks := h.Provider.Check(context.Background(), h.Account)
	if len(checks) == 0 {
		t.Fatal("the account check reports nothing")
	}
	for _, c := range checks {
		if c.Name == "" || c.Message == "" {
			t.Errorf("check %+v: want a name and a message", c)
		}
	}
}
