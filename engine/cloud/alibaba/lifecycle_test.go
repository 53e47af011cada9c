package alibaba_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/inspect/imagetest"
)

type memDisk struct{ b []byte }

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

// sourceDisk is a GPT disk with one ext4 partition and random data.
func sourceDisk(t *testing.T, size int64, label string) []byte {
	t.Helper()
	img := &memDisk{b: make([]byte, size)}
	if err := imagetest.WriteGPT(img, size, []imagetest.Part{{Start: 1 << 20, Size: size - 2<<20, GPTType: imagetest.GUIDLinux, Name: "root"}}); err != nil {
		t.Fatal(err)
	}
	copy(img.b[1<<20:], imagetest.Superblock("ext4", label))
	rand.Read(img.b[1<<20+64<<10 : 1<<20+192<<10])
	return img.b
}

// replicated makes a target disk of the migration, syncs content into it
// through its gateway and takes a recovery point.
func (e *cloudEnv) replicated(t *testing.T, a *agent, id, mid string, content []byte) cloud.RecoveryPoint {
	t.Helper()
	ctx := context.Background()
	if _, err := e.drv.CreateDisk(ctx, cloud.DiskSpec{ID: id, SizeBytes: int64(len(content)), MigrationID: mid}); err != nil {
		t.Fatal(err)
	}
	ep, err := e.drv.PrepareGateway(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	a.write(t, e.drv, ep, 0, content)
	p, err := e.drv.CreateRecoveryPoint(ctx, id, map[string]string{"pass": "1"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func checkNames(m cloud.Machine) map[string]cloud.Check {
	out := map[string]cloud.Check{}
	for _, c := range m.Checks {
		out[c.Name+"@"+c.Disk] = c
	}
	return out
}

// TestLaunchesLeaveNothingBehind: a test launch goes through the repair
// instance (which inspected the disks and reported), an image and
// RunInstances; terminating it leaves only the replication's own resources;
// a cutover is live until rolled back; Teardown of the migration leaves the
// emulated account as new and the store empty.
func TestLaunchesLeaveNothingBehind(t *testing.T) {
	e := newCloud(t, nil)
	ctx := context.Background()
	a := &agent{files: map[string]string{}, dir: t.TempDir()}
	content := sourceDisk(t, 6<<20, "web")
	p := e.replicated(t, a, "m42-sda", "m42", content)

	m, err := e.drv.CreateMachine(ctx, cloud.MachineSpec{Token: "m42-test-1", Kind: cloud.LaunchTest, MigrationID: "m42", Points: []string{p.ID},
		Shape: cloud.Shape{InstanceType: "ecs.c7.large"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.State != cloud.MachineStarting || !strings.Contains(m.Stage, "repair instance") {
		t.Errorf("CreateMachine returned %s / %q", m.State, m.Stage)
	}
	m, err = e.drv.Wait(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	cs := checkNames(m)
	for _, want := range []string{"partition-table@m42-sda", "filesystem p1@m42-sda", "adaptation@", "instance@", "boot@"} {
		if _, ok := cs[want]; !ok {
			t.Errorf("no %s check in %+v", want, m.Checks)
		}
	}
	if c := cs["instance@"]; !c.Passed || !strings.Contains(c.Message, "ecs.c7.large") {
		t.Errorf("instance check %+v: want the assessment's type", c)
	}
	if c := cs["adaptation@"]; !c.Skipped {
		t.Errorf("adaptation of a disk without an OS: %+v, want skipped", c)
	}
	if m.State != cloud.MachineRunning {
		t.Fatalf("machine %s: %+v", m.State, m.Checks)
	}
	if got := e.read(t, m.Disks[0].DiskID); !bytes.Equal(got, content) {
		t.Error("the launched instance's disk does not hold the point's bytes")
	}
	inv := e.emu.Inventory()
	if len(inv.Images) != 0 || len(inv.Instances) != 2 || len(inv.Snapshots) != 1 {
		t.Errorf("during a test launch: %v; want the gateway and the launched instance, the point, and no image or repaired snapshot left", inv)
	}
	if err := e.drv.Terminate(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	// What is left is the replication's: the gateway, its group, the target
	// disk, the point.
	inv = e.emu.Inventory()
	if len(inv.Instances) != 1 || len(inv.Images) != 0 || len(inv.Snapshots) != 1 || len(inv.SecurityGroups) != 1 || len(inv.Disks) != 2 {
		t.Errorf("after Terminate: %v", inv)
	}

	// A cutover, live, rolled back.
	live, err := e.drv.CreateMachine(ctx, cloud.MachineSpec{Token: "m42-cutover", Kind: cloud.LaunchCutover, MigrationID: "m42", Points: []string{p.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if live, err = e.drv.Wait(ctx, live.ID); err != nil || live.State != cloud.MachineLive {
		t.Fatalf("cutover: %+v, %v", live, err)
	}
	if err := e.drv.Rollback(ctx, live.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.drv.Machine(ctx, live.ID); got.State != cloud.MachineRolledBack {
		t.Errorf("after Rollback: %s", got.State)
	}
	if inv := e.emu.Inventory(); len(inv.Instances) != 1 || len(inv.Images) != 0 || len(inv.Snapshots) != 1 {
		t.Errorf("after Rollback: %v", inv)
	}
	// The ticket the gateway registered with is spent.
	body, _ := json.Marshal(alibaba.Registration{Token: "frc_forged", Fingerprint: "x", CredentialKey: strings.Repeat("A", 44), Port: 1})
	resp, err := http.Post(e.provider.CallbackURL+"/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a made-up ticket: %s %s", resp.Status, b)
	}

	if err := e.drv.Teardown(ctx, "m42"); err != nil {
		t.Fatal(err)
	}
	waitGone(t, e)
	if inv := e.emu.Inventory(); !inv.Empty() {
		t.Errorf("after Teardown: %v", inv)
	}
	if n := e.store.Len(); n != 0 {
		recs, _ := e.store.List(ctx, "")
		var keys []string
		for _, r := range recs {
			keys = append(keys, r.Key)
		}
		t.Errorf("after Teardown the store holds %v", keys)
	}
}

// waitGone waits (a minute at most) for the processes of deleted instances
// to end: ECS answers DeleteInstance before the instance is released.
func waitGone(t *testing.T, e *cloudEnv) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		inv := e.emu.Inventory()
		if inv.Processes == 0 && inv.VMs == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond) // a gateway shuts down gracefully on SIGTERM; bounded by the deadline
	}
}
