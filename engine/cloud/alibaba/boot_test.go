package alibaba_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
)

// syncFile replicates a whole image file through the endpoint's gateway.
func syncFile(t *testing.T, d *alibaba.Driver, ep cloud.GatewayEndpoint, src, state string) {
	t.Helper()
	ctx := context.Background()
	gw, err := d.GatewayClient(ctx, ep.URL, ep.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := gw.IssueCredential(ep.DiskID, engine.AgentSubject(1), "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := engine.NewSyncer(engine.SyncOptions{Source: src, DiskID: ep.DiskID, Gateway: ep.URL, Credential: cred,
		Fingerprint: ep.Fingerprint, StateDir: state, RetryFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatalf("sync %s: %v", src, err)
	}
}

// TestVMwareGuestLaunchesOnECS is the whole launch path with a real guest:
// the VMware-like test image (which does not boot on virtio as it is) is
// replicated through the gateway, a point is taken, the repair instance
// adapts it (engine/adapt, as local launches do), the repaired disk is
// imaged, and the instance of the image boots under qemu to a login prompt,
// which the boot check reads through GetInstanceConsoleOutput.
func TestVMwareGuestLaunchesOnECS(t *testing.T) {
	img := vmtest.Image(t, vmtest.VMware)
	cache := strings.TrimSuffix(vmtest.Image(t, vmtest.Base), ".img") + ".accel.json"
	e := newCloud(t, func(o *ecsemu.Options, p *alibaba.Options) {
		o.VM = ecsemu.VMOptions{Probe: vmtest.Probe(t), AccelCache: cache}
		p.BootCheck, p.BootTimeout = true, 4*time.Minute
	})
	ctx := context.Background()
	size := int64(2 << 30)
	if _, err := e.drv.CreateDisk(ctx, cloud.DiskSpec{ID: "vm1-sda", SizeBytes: size, MigrationID: "vm1"}); err != nil {
		t.Fatal(err)
	}
	ep, err := e.drv.PrepareGateway(ctx, "vm1-sda")
	if err != nil {
		t.Fatal(err)
	}
	syncFile(t, e.drv, ep, img, t.TempDir())
	p, err := e.drv.CreateRecoveryPoint(ctx, "vm1-sda", map[string]string{"pass": "1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.drv.CreateMachine(ctx, cloud.MachineSpec{Token: "vm1-test", Kind: cloud.LaunchTest, MigrationID: "vm1", Points: []string{p.ID}})
	if err != nil {
		t.Fatal(err)
	}
	m, err = e.drv.Wait(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	cs := checkNames(m)
	if c := cs["adaptation@"]; !c.Passed || c.Skipped || !strings.Contains(c.Message, "changes") {
		t.Errorf("adaptation: %+v", c)
	}
	if c := cs["boot@"]; !c.Passed || c.Skipped {
		t.Errorf("boot: %+v", c)
	}
	if m.State != cloud.MachineRunning {
		t.Fatalf("the adapted guest: %s %+v", m.State, m.Checks)
	}
	t.Logf("checks: %+v", m.Checks)
	if err := e.drv.Teardown(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	waitGone(t, e)
	if inv := e.emu.Inventory(); !inv.Empty() {
		t.Errorf("after Teardown: %v", inv)
	}
}
