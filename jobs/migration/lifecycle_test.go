package migration

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
)

// TestLifecycleOfATwoDiskHost runs the server half of a migration in one
// process against a real SQLite file, the embedded queue, the local cloud
// and a real HTTP gateway, for a host with two disks: prepare makes both
// target disks; the agent's command is derived from the database (once,
// not on every poll) and carries both; engine syncs through the gateway
// complete the pass and record one recovery point of both disks; a test
// launch is one machine with both disks; a cutover that asks for approval
// waits for it, takes the final delta and makes one live machine; a rollback
// discards it; and once the migration stops replicating the gateway refuses
// the credential that is still valid.
func TestLifecycleOfATwoDiskHost(t *testing.T) {
	e := newEnv(t, envOpts{disks: []string{"vda", "vdb"}})
	e.work(4)
	id := e.start()
	e.waitState(id, ferry.MigrationInitialSync)

	cmds, err := e.l.SyncCommands(e.ctx, e.agent.ID)
	if err != nil || len(cmds) != 1 || len(cmds[0].Disks) != 2 {
		t.Fatalf("commands: %+v, %v", cmds, err)
	}
	c := cmds[0]
	if c.Pass != 1 || c.Final || c.Disks[0].DiskID != TargetDiskID(id, "vda") || c.Disks[1].DiskID != TargetDiskID(id, "vdb") || c.Disks[0].Gateway != "" {
		t.Fatalf("command %+v", c)
	}
	if again, _ := e.l.SyncCommands(e.ctx, e.agent.ID); len(again) != 0 {
		t.Fatalf("the command was sent again on the next poll: %+v", again)
	}
	// Each credential names the agent (revocation reaches the data path)
	// and the tenant (the gateway's content index is per tenant).
	key, err := engine.LoadOrCreateCredentialKey(filepath.Join(e.dir, "gateway", "credential.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Disks {
		cr, err := key.Parse(d.Credential, d.DiskID, time.Now())
		if err != nil || cr.Subject != engine.AgentSubject(e.agent.ID) || cr.Tenant != strconv.Itoa(e.tenant.ID) {
			t.Errorf("credential of %s: %+v, %v; want agent %d of tenant %d", d.Name, cr, err, e.agent.ID, e.tenant.ID)
		}
	}
	other := e.c.Agent.Create().SetTenantID(e.tenant.ID).SetCredentialHash([]byte("h2")).SaveX(e.sys)
	if cmds, err := e.l.SyncCommands(e.ctx, other.ID); err != nil || len(cmds) != 0 {
		t.Fatalf("an agent without a host got %v, %v", cmds, err)
	}
	// Redelivery: the command goes again once the gateways have been quiet
	// for Redeliver, which the database (not a process) knows.
	e.l.Redeliver = time.Millisecond
	time.Sleep(5 * time.Millisecond) // let the quiet period pass
	again, _ := e.l.SyncCommands(e.ctx, e.agent.ID)
	if len(again) != 1 {
		t.Fatalf("no redelivery after the gateways were quiet: %+v", again)
	}
	e.l.Redeliver = time.Hour
	e.run(again)
	m := e.waitState(id, ferry.MigrationSyncing)
	got := e.c.Migration.Query().Where(migration.ID(id)).WithRecoveryPoints().OnlyX(e.sys)
	if got.BytesDone != got.BytesTotal || got.BytesTotal != 2*(12<<20) || len(got.Edges.RecoveryPoints) != 1 {
		t.Fatalf("after the pass: done %d of %d, %d recovery points", got.BytesDone, got.BytesTotal, len(got.Edges.RecoveryPoints))
	}
	rp := got.Edges.RecoveryPoints[0]
	if len(rp.Points) != 2 || rp.Labels[0] != "initial" {
		t.Fatalf("recovery point %+v", rp)
	}
	// The syncs read their sources live (no snapshot was asked for): the
	// point says it is not a point in time, and why, and the sync step's
	// log warns of it.
	if !slices.Contains(rp.Labels, "consistent:false") {
		t.Errorf("recovery point of a live read: labels %v", rp.Labels)
	}
	for _, p := range rp.Points {
		if p.Consistent || !strings.Contains(p.Consistency, "live read") {
			t.Errorf("point of disk %s of a live read: %+v", p.DiskName, p)
		}
	}
	if lines := e.log(e.steps(id, KindSync)[0].ID); !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "point: pass 1: disk vda is NOT a point in time: live read")
	}) {
		t.Errorf("the sync step's log does not warn of the live read: %q", lines)
	}
	for _, d := range m.Disks {
		if d.StartedAt == nil || d.SyncedAt == nil || d.SeenAt == nil || d.BytesDone != d.SizeBytes {
			t.Errorf("disk %s session not mirrored into the database: %+v", d.Name, d)
		}
		p, _ := e.drv.DiskPath(d.TargetDiskID)
		if fileSHA(t, p) != fileSHA(t, e.sources[d.Name]) {
			t.Errorf("target disk %s differs from its source", d.Name)
		}
	}
	if cmds, _ := e.l.SyncCommands(e.ctx, e.agent.ID); len(cmds) != 0 {
		t.Fatalf("a recorded pass still yields commands: %+v", cmds)
	}
	prep := e.steps(id, KindPrepare)
	if len(prep) != 1 || prep[0].Status != step.StatusSucceeded || prep[0].Phase != "start_sync" {
		t.Fatalf("prepare step %+v", prep)
	}

	// Continuous replication: once SyncEvery has passed the next pass is
	// requested and only the changed disk's change travels.
	e.l.SyncEvery = 100 * time.Millisecond
	syncStep := e.steps(id, KindSync)[0]
	if err := e.l.wake(e.ctx, syncStep.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pass 2 to be requested", 20*time.Second, func() bool { return e.mig(id).SyncPass == 2 })
	e.l.SyncEvery = time.Hour
	e.scribble("vda", 6<<20)
	e.agentPass()
	waitFor(t, "the second recovery point", 20*time.Second, func() bool { return e.c.RecoveryPoint.Query().CountX(e.sys) == 2 })

	// A test launch: one machine with both disks, checked disk by disk.
	lid, err := e.l.TestLaunch(e.ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(id, ferry.MigrationCutoverReady)
	tl := e.c.Launch.GetX(e.sys, lid)
	if tl.Status != launch.StatusSucceeded || len(tl.Instances) != 2 || tl.Instances[0].InstanceID != tl.Instances[1].InstanceID || tl.InstanceID != tl.Instances[0].InstanceID {
		t.Fatalf("test launch %+v", tl)
	}
	checked := map[any]bool{}
	for _, ch := range tl.Checks {
		checked[ch["disk"]] = true
	}
	if !checked["vda"] || !checked["vdb"] {
		t.Errorf("test launch checks name disks %v, want both", checked)
	}
	if ms := e.machines(); len(ms) != 1 || len(ms[0].Disks) != 2 || ms[0].State != cloud.MachineRunning {
		t.Fatalf("machines on the local cloud's disk: %+v", ms)
	}

	// A cutover that needs an approval waits for it (and the reconciler
	// leaves it alone), then takes the final delta.
	e.c.Migration.UpdateOneID(id).SetSettings(map[string]any{"approval": map[string]any{"role": "admin"}, "retention": map[string]any{"keepLast": 1}}).ExecX(e.sys)
	initial := e.c.RecoveryPoint.Query().Order(ent.Asc("id")).FirstX(e.sys)
	if err := e.l.Approve(e.ctx, id, "ops"); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("approve before a cutover: %v, want ECONFLICT", err)
	}
	if err := e.l.RequestCutover(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	var cut *ent.Step
	waitFor(t, "the cutover to wait for its approval", 20*time.Second, func() bool {
		cut = e.steps(id, KindCutover)[0]
		return cut.Status == step.StatusWaiting && cut.Phase == "approval"
	})
	if cut.WakeAt != nil {
		t.Errorf("an approval wait has a wake time %v", cut.WakeAt)
	}
	if m := e.mig(id); m.SyncPass != 2 {
		t.Errorf("the final pass (%d) was requested before the approval", m.SyncPass)
	}
	if cmds, _ := e.l.SyncCommands(e.ctx, e.agent.ID); len(cmds) != 0 {
		t.Errorf("the agent was told to quiesce for the final pass before the approval: %+v", cmds)
	}
	if _, err := e.l.Reconcile(e.ctx); err != nil {
		t.Fatal(err)
	}
	if after := e.c.Step.GetX(e.sys, cut.ID); after.Status != step.StatusWaiting || after.Generation != cut.Generation {
		t.Errorf("the reconciler woke a step waiting for an approval: %+v", after)
	}
	e.scribble("vdb", 8<<20)
	if err := e.l.Approve(e.ctx, id, "ops@example.com"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the final pass's command", 20*time.Second, func() bool {
		cmds, _ := e.l.SyncCommands(e.ctx, e.agent.ID)
		e.run(cmds) // the final delta
		return len(cmds) == 1 && cmds[0].Final
	})
	m = e.waitState(id, ferry.MigrationCutOver)
	live := e.c.Launch.Query().Where(launch.HasMigrationWith(migration.ID(id)), launch.KindEQ(launch.KindCutover)).OnlyX(e.sys)
	if live.Status != launch.StatusSucceeded || len(live.Instances) != 2 {
		t.Fatalf("cutover launch %+v", live)
	}
	for _, in := range live.Instances {
		p, _ := e.drv.DiskPath(in.DiskID)
		if fileSHA(t, p) != fileSHA(t, e.sources[in.DiskName]) {
			t.Errorf("live disk %s differs from its source after the final delta", in.DiskName)
		}
	}
	// Retention (keep the newest, plus the newest of each of 7 days: the
	// settings' keepLast with the default dailies) dropped the initial
	// point; the test launch's point stays because a launch used it.
	if rows := e.c.RecoveryPoint.Query().CountX(e.sys); rows != 2 {
		t.Errorf("%d recovery points after the final pass, want 2 (the launched one and the newest)", rows)
	}
	if _, err := e.drv.RecoveryPoint(e.ctx, initial.Points[0].PointID); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("the initial pass's point at the cloud after retention: %v, want deleted", err)
	}
	if tl := e.c.Launch.GetX(e.sys, lid); tl.Status != launch.StatusTerminated {
		t.Errorf("test launch %s after the cutover, want terminated", tl.Status)
	}
	log := strings.Join(e.log(e.steps(id, KindCutover)[0].ID), "\n")
	for _, want := range []string{"approval: approved by ops@example.com", "final_sync: final pass", "finalize: cut over"} {
		if !strings.Contains(log, want) {
			t.Errorf("cutover log lacks %q:\n%s", want, log)
		}
	}

	// Rollback: the live machine goes, the sources stay.
	before := fileSHA(t, e.sources["vda"])
	if err := e.l.Rollback(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.waitState(id, ferry.MigrationRolledBack)
	for _, mc := range e.machines() {
		if mc.State.Active() {
			t.Errorf("machine %s still %s after the rollback", mc.ID, mc.State)
		}
	}
	if fileSHA(t, e.sources["vda"]) != before {
		t.Error("the rollback changed the source")
	}
	if err := e.l.Rollback(e.ctx, id); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("second rollback: %v, want ECONFLICT", err)
	}
	for _, s := range e.c.Step.Query().Where(step.MigrationID(id)).AllX(e.sys) {
		if !finished(s.Status) || s.LeaseOwner != "" {
			t.Errorf("step %s is %s (lease %q) after the rollback", s.Kind, s.Status, s.LeaseOwner)
		}
	}

	// A migration that no longer replicates refuses the (still valid)
	// credential; a disk id that is no migration's target is not found.
	var ge *engine.GatewayError
	s, _ := engine.NewSyncer(engine.SyncOptions{Source: e.sources["vda"], DiskID: c.Disks[0].DiskID, Gateway: e.ts.URL, Credential: c.Disks[0].Credential, RetryFor: time.Second})
	if _, err := s.Run(e.ctx); !errors.As(err, &ge) || ge.Status != http.StatusForbidden {
		t.Fatalf("sync after rollback: %v, want 403 from the gateway", err)
	}
	resp, err := http.Post(e.ts.URL+"/sync/v1/disks/i-1-disk/session", "application/json", bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("foreign disk: status %d, want 404", resp.StatusCode)
	}
}

// The service checks what the API used to: input, the state machine, the
// tenant, and a host migrating once at a time.
func TestServiceRefusesWhatTheStateMachineDoes(t *testing.T) {
	e := newEnv(t, envOpts{})
	cases := []struct {
		name string
		err  error
		code string
		say  string
	}{
		{"no hosts", func() error { _, err := e.l.Start(e.ctx, ferry.MigrationStart{}); return err }(), ferry.EINVALID, "at least one host"},
		{"bad rate", func() error {
			_, err := e.l.Start(e.ctx, ferry.MigrationStart{HostIDs: []int{e.host.ID}, RateLimit: "fast"})
			return err
		}(), ferry.EINVALID, "rate limit"},
		{"zero rate", func() error {
			_, err := e.l.Start(e.ctx, ferry.MigrationStart{HostIDs: []int{e.host.ID}, RateLimit: "0"})
			return err
		}(), ferry.EINVALID, "never send"},
		{"unknown host", func() error { _, err := e.l.Start(e.ctx, ferry.MigrationStart{HostIDs: []int{12345}}); return err }(), ferry.ENOTFOUND, "host 12345"},
		{"unknown account", func() error {
			n := 999
			_, err := e.l.Start(e.ctx, ferry.MigrationStart{HostIDs: []int{e.host.ID}, CloudAccountID: &n})
			return err
		}(), ferry.ENOTFOUND, "cloud account 999"},
		{"provider not built in", func() error {
			ca := e.c.CloudAccount.Create().SetTenantID(e.tenant.ID).SetName("hz").SetProvider("alibaba").SaveX(e.sys)
			_, err := e.l.Start(e.ctx, ferry.MigrationStart{HostIDs: []int{e.host.ID}, CloudAccountID: &ca.ID})
			return err
		}(), ferry.EINVALID, "not part of this build"},
	}
	for _, tc := range cases {
		if ferry.ErrorCode(tc.err) != tc.code || !strings.Contains(ferry.ErrorMessage(tc.err), tc.say) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, tc.err, tc.code, tc.say)
		}
	}
	id := e.start()
	if _, err := e.l.Start(e.ctx, ferry.MigrationStart{HostIDs: []int{e.host.ID}}); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("second migration of the host: %v, want ECONFLICT", err)
	}
	if err := e.l.RequestCutover(e.ctx, id); ferry.ErrorCode(err) != ferry.ECONFLICT || !strings.Contains(ferry.ErrorMessage(err), "test-launch") {
		t.Errorf("cutover of a pending migration: %v", err)
	}
	if _, err := e.l.TestLaunch(e.ctx, id, nil); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("test launch of a pending migration: %v", err)
	}
	other := e.c.Tenant.Create().SetName("O").SetSlug("o").SaveX(e.sys)
	octx := tenantContext(e.ctx, other.ID)
	if err := e.l.Rollback(octx, id); ferry.ErrorCode(err) != ferry.ENOTFOUND {
		t.Errorf("another tenant's rollback: %v, want ENOTFOUND", err)
	}
	if _, err := e.l.Start(octx, ferry.MigrationStart{HostIDs: []int{e.host.ID}}); ferry.ErrorCode(err) != ferry.ENOTFOUND {
		t.Errorf("another tenant's start of our host: %v, want ENOTFOUND", err)
	}
	if got := e.steps(id, KindPrepare); len(got) != 1 || got[0].Status != step.StatusPending {
		t.Errorf("a started migration's prepare step: %+v", got)
	}
}
