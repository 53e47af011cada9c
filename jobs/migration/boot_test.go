package migration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/local"
	"github.com/ferry-migrate/ferry/engine/health"
	"github.com/ferry-migrate/ferry/engine/quiesce"
	"github.com/ferry-migrate/ferry/engine/vm"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
)

// bootEnv is a control plane whose local cloud boots launches in qemu,
// with one host whose disk vda is a copy of the bootable test image, seen
// listening on port 80 and assessed at 1 vCPU / 1 GiB. Nothing of its VMs
// survives the test.
func bootEnv(tb testing.TB) (*env, *vmtest.ControlPlane) {
	tb.Helper()
	cp := vmtest.NewControlPlane(tb)
	cache := strings.TrimSuffix(vmtest.Image(tb, vmtest.Base), ".img") + ".accel.json"
	e := newEnv(tb, envOpts{images: map[string]string{"vda": vmtest.Image(tb, vmtest.Base)}, vm: &local.VMOptions{
		Probe: vmtest.Probe(tb), AccelCache: cache, BootTimeout: 5 * time.Minute,
		AgentForwards: []vm.GuestForward{cp.Forward(tb, "10.0.2.100:8080")},
		AgentPhoned: func(ctx context.Context, m cloud.Machine, since time.Time) (string, bool, error) {
			return cp.Phoned(ctx)
		},
	}})
	vms := e.drv.VMHost()
	tb.Cleanup(func() {
		if pids := vmtest.QemuProcesses(vms.Dir()); len(pids) > 0 && !tb.Failed() {
			tb.Errorf("qemu processes left: %v", pids)
		}
		ins, _ := vms.List() // a failed test still leaves nothing running
		for _, in := range ins {
			vms.Delete(context.Background(), in.Name())
		}
	})
	client := e.c.Host.Create().SetTenantID(e.tenant.ID).SetName("client").SaveX(e.sys)
	e.c.Connection.Create().SetTenantID(e.tenant.ID).SetSrcHostID(client.ID).SetDstHostID(e.host.ID).SetPort(80).ExecX(e.sys)
	e.c.Assessment.Create().SetTenantID(e.tenant.ID).SetHostID(e.host.ID).SetTarget("local").SetNeedVcpus(1).SetNeedMemoryGib(1).ExecX(e.sys)
	return e, cp
}

// stubSystemctl writes a systemctl stand-in that logs its calls to
// <dir>/systemctl.log and says every unit is active.
func stubSystemctl(tb testing.TB, dir string) (prog, calls string) {
	calls = filepath.Join(dir, "systemctl.log")
	prog = filepath.Join(dir, "systemctl")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n[ \"$1\" = is-active ] && echo active\nexit 0\n"), 0o755); err != nil {
		tb.Fatal(err)
	}
	return prog, calls
}

// finalPass hands the cutover's final command to the agent's runner and
// waits for the pass.
func (e *env) finalPass(ctx context.Context, runner *engine.CommandRunner, id int) engine.SyncCommand {
	var c engine.SyncCommand
	waitFor(e.t, "the final pass's command", time.Minute, func() bool {
		cmds, err := e.l.SyncCommands(e.ctx, e.agent.ID)
		if err != nil || len(cmds) != 1 || !cmds[0].Final {
			return false
		}
		c = cmds[0]
		b, _ := json.Marshal(c)
		runner.Handle(ctx, "final", engine.CommandSync, b)
		runner.Wait()
		return true
	})
	return c
}

// bootWait bounds the phases that boot a TCG guest on a loaded machine.
const bootWait = 8 * time.Minute

// TestWholeMigrationBoots is issue 16's whole migration on a real bootable
// Debian image: the agent replicates the image file; the test launch's copy
// is adapted, boots on an isolated network, and its console, port 80 and
// agent checks pass (recorded with durations and evidence, the console on
// the launch); the cutover quiesces the source through the agent's command
// runner (its services stopped by a stand-in systemctl), syncs the final
// delta, boots the live copy on the target network and records the
// downtime; the rollback stops the target and the agent brings the source
// back. Two boots in all; nothing of either is left.
func TestWholeMigrationBoots(t *testing.T) {
	e, cp := bootEnv(t)
	vms := e.drv.VMHost()
	e.work(2)
	id := e.start()
	e.syncing(id)
	e.c.Migration.UpdateOneID(id).SetSettings(map[string]any{"quiesce": map[string]any{"mode": "services", "services": []any{"ferry-http.service"}}}).ExecX(e.sys)

	// Test launch.
	lid, err := e.l.TestLaunch(e.ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the test launch to settle", bootWait, func() bool {
		s := e.c.Launch.GetX(e.sys, lid).Status
		return s == launch.StatusSucceeded || s == launch.StatusFailed
	})
	tl := e.c.Launch.GetX(e.sys, lid)
	if tl.Status != launch.StatusSucceeded {
		t.Fatalf("test launch %s: %s\nchecks %v\nconsole:\n%s", tl.Status, tl.Message, tl.Checks, tl.Console)
	}
	e.waitState(id, ferry.MigrationCutoverReady)
	byName := map[string]map[string]any{}
	for _, c := range tl.Checks {
		byName[c["name"].(string)] = c
	}
	for _, name := range []string{"adapt", "console", "ports", "agent"} {
		c := byName[name]
		if c == nil || c["passed"] != true || c["skipped"] == true || c["evidence"] == nil || c["durationMs"] == nil {
			t.Errorf("test launch check %s: %v", name, c)
		}
	}
	if shape, _ := byName["shape"]["message"].(string); !strings.HasPrefix(shape, "1 vCPU / 1024 MiB") {
		t.Errorf("the launch was not sized by the assessment: %q", shape)
	}
	if !health.DefaultReady.MatchString(tl.Console) || tl.Accel == "" || tl.HealthyAt == nil || tl.DowntimeSeconds != nil {
		t.Errorf("test launch console %q, accel %q, healthy %v, downtime %v", tail(tl.Console), tl.Accel, tl.HealthyAt, tl.DowntimeSeconds)
	}
	if e := cp.WaitEgress(t); e != "blocked" {
		t.Errorf("the test launch reached the host directly: %q", e)
	}
	tlog := strings.Join(e.log(e.steps(id, KindTestLaunch)[0].ID), "\n")
	for _, want := range []string{"adapt: adapt: machine", "boot: boot: machine", "is running"} {
		if !strings.Contains(tlog, want) {
			t.Errorf("test launch log lacks %q:\n%s", want, tlog)
		}
	}

	// Cutover: the agent's runner quiesces the source before the final pass.
	fake, calls := stubSystemctl(t, e.dir)
	runner := &engine.CommandRunner{Server: e.ts.URL, StateDir: filepath.Join(e.dir, "agent"), Sources: e.sources,
		QuiesceTools: quiesce.Tools{Systemctl: fake}, Report: func(r engine.CommandResult) { t.Logf("agent: %+v", r) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.l.RequestCutover(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	if c := e.finalPass(ctx, runner, id); c.Quiesce == nil || c.Quiesce.Mode != "services" {
		t.Fatalf("final command without the quiesce plan: %+v", c.Quiesce)
	}
	if !runner.Quiesced(id) {
		t.Fatal("the agent did not keep the source quiesced after the final pass")
	}
	waitFor(t, "the cutover", bootWait, func() bool {
		s := e.mig(id).State
		return s == ferry.MigrationCutOver || s == ferry.MigrationCutoverReady
	})
	cl := e.c.Launch.Query().Where(launch.HasMigrationWith(migration.ID(id)), launch.KindEQ(launch.KindCutover)).OnlyX(e.sys)
	if m := e.mig(id); m.State != ferry.MigrationCutOver {
		t.Fatalf("cutover: migration %s (%s); launch %s %s\nconsole:\n%s", m.State, m.LastError, cl.Status, cl.Message, cl.Console)
	}
	if cl.QuiescedAt == nil || cl.HealthyAt == nil || cl.DowntimeSeconds == nil || *cl.DowntimeSeconds <= 0 ||
		cl.HealthyAt.Sub(*cl.QuiescedAt).Seconds() != *cl.DowntimeSeconds {
		t.Errorf("downtime not recorded: quiesced %v healthy %v downtime %v", cl.QuiescedAt, cl.HealthyAt, cl.DowntimeSeconds)
	}
	t.Logf("downtime %.1f s (quiesced %s → healthy %s)", *cl.DowntimeSeconds, cl.QuiescedAt.Format(time.TimeOnly), cl.HealthyAt.Format(time.TimeOnly))
	if !strings.Contains(strings.Join(e.log(e.steps(id, KindCutover)[0].ID), "\n"), "downtime") {
		t.Error("the cutover log does not say the downtime")
	}
	if ins, _ := vms.List(); len(ins) != 1 || ins[0].Spec.Network.Mode != "target" {
		t.Errorf("VMs after the cutover: %v (want the live one, on the target network)", ins)
	}
	if c, _ := os.ReadFile(calls); !strings.Contains(string(c), "stop ferry-http.service") || strings.Contains(string(c), "start ferry-http.service") {
		t.Errorf("systemctl calls during the cutover:\n%s", c)
	}

	// Rollback: the target stops, the agent brings the source back.
	if err := e.l.Rollback(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.waitState(id, ferry.MigrationRolledBack)
	if ins, _ := vms.List(); len(ins) != 0 {
		t.Errorf("VMs after the rollback: %v", ins)
	}
	resumes, err := e.l.ResumeCommands(e.ctx, e.agent.ID)
	if err != nil || len(resumes) != 1 || resumes[0].MigrationID != id {
		t.Fatalf("resume commands after the rollback: %v %v", resumes, err)
	}
	b, _ := json.Marshal(resumes[0])
	runner.Handle(ctx, "resume", engine.CommandResume, b)
	if runner.Quiesced(id) {
		t.Error("the source is still quiesced after the resume command")
	}
	if c, _ := os.ReadFile(calls); !strings.Contains(string(c), "start ferry-http.service") {
		t.Errorf("the source's service was not started again:\n%s", c)
	}
	if again, _ := e.l.ResumeCommands(e.ctx, e.agent.ID); len(again) != 0 {
		t.Errorf("resume sent twice: %v", again)
	}
	for _, mc := range e.machines() {
		if mc.State.Active() {
			t.Errorf("machine %s still %s", mc.ID, mc.State)
		}
	}
}

func tail(s string) string {
	if len(s) > 300 {
		return s[len(s)-300:]
	}
	return s
}

// A quiesce plan is checked at the start and kept in the settings the
// final sync command reads.
func TestQuiescePlanChecked(t *testing.T) {
	for _, tt := range []struct {
		q    ferry.QuiescePlan
		want string // "" = accepted
	}{
		{ferry.QuiescePlan{Mode: "services", Services: []string{"nginx.service", "app@1.service"}}, ""},
		{ferry.QuiescePlan{Mode: "freeze", Mounts: []string{"/srv", "/"}}, ""},
		{ferry.QuiescePlan{Mode: "shutdown"}, ""},
		{ferry.QuiescePlan{Mode: "services"}, "needs the systemd units"},
		{ferry.QuiescePlan{Mode: "services", Services: []string{"a b"}}, `service 1 "a b"`},
		{ferry.QuiescePlan{Mode: "freeze", Mounts: []string{"srv"}}, `mount 1 "srv"`},
		{ferry.QuiescePlan{Mode: "pause"}, `mode "pause"`},
	} {
		s, err := startSettings(ferry.MigrationStart{HostIDs: []int{1}, Quiesce: &tt.q})
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.q, err)
				continue
			}
			p := quiescePlan(s)
			if p == nil || p.Mode != tt.q.Mode || len(p.Services) != len(tt.q.Services) || len(p.Mounts) != len(tt.q.Mounts) {
				t.Errorf("%+v: plan for the agent %+v", tt.q, p)
			}
			continue
		}
		if ferry.ErrorCode(err) != ferry.EINVALID || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want EINVALID naming %q", tt.q, err, tt.want)
		}
	}
	if s, _ := startSettings(ferry.MigrationStart{HostIDs: []int{1}}); quiescePlan(s) != nil {
		t.Error("no plan asked, one made")
	}
}

// A cutover launch that failed after its source was quiesced yields one
// resume command for the agent of its host; one never quiesced, or still
// running, none.
func TestResumeCommandsOnceAfterAFailedCutover(t *testing.T) {
	e := newEnv(t, envOpts{})
	id := e.start()
	now := time.Now().UTC()
	rp := e.c.RecoveryPoint.Create().SetTenantID(e.tenant.ID).SetMigrationID(id).SetExternalID("rp-1").SaveX(e.sys)
	mk := func(status launch.Status, quiesced bool) {
		c := e.c.Launch.Create().SetTenantID(e.tenant.ID).SetMigrationID(id).SetRecoveryPointID(rp.ID).SetKind(launch.KindCutover).SetStatus(status)
		if quiesced {
			c.SetQuiescedAt(now)
		}
		c.ExecX(e.sys)
	}
	mk(launch.StatusRunning, true) // still launching: the source stays quiesced
	mk(launch.StatusFailed, false) // never quiesced: nothing to bring back
	cmds, err := e.l.ResumeCommands(e.ctx, e.agent.ID)
	if err != nil || len(cmds) != 0 {
		t.Fatalf("resume commands before any failure: %v %v", cmds, err)
	}
	mk(launch.StatusFailed, true)
	if cmds, err = e.l.ResumeCommands(e.ctx, e.agent.ID); err != nil || len(cmds) != 1 || cmds[0].MigrationID != id {
		t.Fatalf("resume commands after the failed cutover: %v %v", cmds, err)
	}
	if cmds, _ = e.l.ResumeCommands(e.ctx, e.agent.ID); len(cmds) != 0 {
		t.Errorf("resume sent twice: %v", cmds)
	}
}
