package wave

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent/hookdelivery"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs/hook"
)

// TestThreeHostWaveWithCapTwoCutsOverInItsWindow: startWave starts two of
// three hosts (the cap) and queues the third in the wave's order; while
// the wave runs no more than two members are ever in their initial copy;
// each host is test-launched, waits for the window a few seconds ahead,
// and is cut over inside it; the wave ends done — all checked against the
// database.
func TestThreeHostWaveWithCapTwoCutsOverInItsWindow(t *testing.T) {
	e := newEnv(t, 3)
	e.work()
	at := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second)
	rep, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{Parallel: ptr(2), CutoverAt: &at, StartedBy: "op@example.com",
		RPO: 30 * time.Minute, KeepLast: ptr(5), KeepDaily: ptr(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Started) != 2 || len(rep.Queued) != 1 || rep.Queued[0] != e.hosts[2].ID || len(rep.NoAgent) != 0 {
		t.Fatalf("report %+v; want web1, web2 started and web3 queued", rep)
	}
	if m := e.members()["web3"]; m.RunState != wavemember.RunStateQueued || m.MigrationID != nil {
		t.Fatalf("web3 is %s (migration %v), want queued without a migration", m.RunState, m.MigrationID)
	}
	// The cap holds while the wave runs: sample the rows until it is over.
	maxCopy := 0
	for deadline := time.Now().Add(3 * time.Minute); ; {
		n, err := e.c.Migration.Query().Where(migration.StateIn(ferry.MigrationPending, ferry.MigrationPreparing, ferry.MigrationInitialSync)).Count(e.sys)
		if err != nil {
			t.Fatal(err)
		}
		maxCopy = max(maxCopy, n)
		if w := e.getWave(); w.Status == "done" || w.Status == "partially_cut_over" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // sampling with a deadline
	}
	if maxCopy > 2 {
		t.Errorf("%d members were in their initial copy at once; the cap is 2", maxCopy)
	}
	w := e.waitWave("done", time.Second)
	if w.RunCutoverAt == nil || !w.RunCutoverAt.Equal(at) || w.FinishedAt == nil {
		t.Fatalf("wave window %v, finished %v; want %v", w.RunCutoverAt, w.FinishedAt, at)
	}
	for name, m := range e.members() {
		mig := e.migOf(name)
		if m.RunState != wavemember.RunStateCutOver || mig == nil || mig.State != ferry.MigrationCutOver {
			t.Fatalf("%s: member %s, migration %+v", name, m.RunState, mig)
		}
		// Cut over inside the window: the cutover step was made at or
		// after its start.
		steps := e.cutoverSteps(mig.ID)
		if len(steps) != 1 || steps[0].CreatedAt.Before(at) {
			t.Errorf("%s: cutover steps %d, first made %v; want one, not before %v", name, len(steps), steps[0].CreatedAt, at)
		}
		live := e.c.Launch.Query().Where(launch.HasMigrationWith(migration.ID(mig.ID)), launch.KindEQ(launch.KindCutover), launch.StatusEQ(launch.StatusSucceeded)).CountX(e.sys)
		if live != 1 {
			t.Errorf("%s: %d live cutover launches, want 1", name, live)
		}
		ret, _ := mig.Settings["retention"].(map[string]any)
		if mig.Settings["wave"] != float64(e.wave.ID) || mig.Settings["rpoSeconds"] != float64(1800) || ret["keepLast"] != float64(5) || ret["keepDaily"] != float64(2) {
			t.Errorf("%s: migration settings %v do not name the wave, its RPO and retention", name, mig.Settings)
		}
	}
	// The queued host started after the first two: its migration is the last.
	if a, c := e.migOf("web1"), e.migOf("web3"); c.ID < a.ID || c.CreatedAt.Before(a.CreatedAt) {
		t.Errorf("web3's migration %d (%v) came before web1's %d (%v)", c.ID, c.CreatedAt, a.ID, a.CreatedAt)
	}
}

// TestFailingMustSucceedHookRollsBackOneHost: a must-succeed webhook after
// launch fails (every attempt) for web2 only: web2's cutover is undone and
// it is rolled back alone, the others cut over, and the wave ends
// partially cut over naming web2. Every delivery is signed and logged.
func TestFailingMustSucceedHookRollsBackOneHost(t *testing.T) {
	e := newEnv(t, 3)
	secret := "s3cret"
	var mu sync.Mutex
	badSig := 0
	hooksSeen := map[string]int{}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p hook.Payload
		json.Unmarshal(body, &p)
		mu.Lock()
		defer mu.Unlock()
		if !hmac.Equal([]byte(r.Header.Get("X-Ferry-Signature")), []byte(hook.Sign([]byte(secret), r.Header.Get("X-Ferry-Timestamp"), body))) {
			badSig++
		}
		hooksSeen[p.Host+"/"+string(p.Event)]++
		if p.Host == "web2" {
			http.Error(w, "smoke test of web2 failed: HTTP 503 from /health", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer ts.Close()
	e.hooks.HTTP = ts.Client()
	e.work()
	at := time.Now().Add(2 * time.Second)
	_, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &at, StartedBy: "op", Hooks: []ferry.Hook{
		{Name: "smoke", Point: ferry.HookAfterLaunch, Kind: ferry.HookWebhook, URL: ts.URL + "/smoke", Retries: 1, MustSucceed: true, Secret: secret},
		{Name: "notify", Point: ferry.HookAfterCutover, Kind: ferry.HookWebhook, URL: ts.URL + "/notify", Secret: secret},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w := e.waitWave("partially_cut_over", 3*time.Minute)
	if !strings.Contains(w.RunMessage, "web2") || !strings.Contains(w.RunMessage, "2 of 3") {
		t.Errorf("wave message %q does not say web2 was rolled back, 2 of 3 cut over", w.RunMessage)
	}
	ms := e.members()
	for _, name := range []string{"web1", "web3"} {
		if ms[name].RunState != wavemember.RunStateCutOver || e.migOf(name).State != ferry.MigrationCutOver {
			t.Errorf("%s: %s / %s, want cut over", name, ms[name].RunState, e.migOf(name).State)
		}
	}
	if ms["web2"].RunState != wavemember.RunStateRolledBack || !strings.Contains(ms["web2"].RunMessage, "smoke") {
		t.Errorf("web2: %s %q, want rolled_back naming the hook", ms["web2"].RunState, ms["web2"].RunMessage)
	}
	waitFor(t, "web2's rollback", time.Minute, func() bool { return e.migOf("web2").State == ferry.MigrationRolledBack })
	// web2's cutover machine is gone; nothing of it is live.
	web2 := e.migOf("web2")
	if n := e.c.Launch.Query().Where(launch.HasMigrationWith(migration.ID(web2.ID)), launch.StatusIn(launch.StatusSucceeded, launch.StatusRunning)).CountX(e.sys); n != 0 {
		t.Errorf("web2 has %d live launches after its rollback", n)
	}
	// The delivery log: two failed attempts of the smoke hook for web2
	// (1 + 1 retry), one good one for each other host, and the notify hook
	// only for the hosts that cut over.
	fails := e.c.HookDelivery.Query().Where(hookdelivery.MigrationID(web2.ID), hookdelivery.Hook("smoke")).AllX(e.sys)
	if len(fails) != 2 || fails[0].Ok || fails[1].Ok || fails[0].StatusCode != http.StatusBadGateway || !strings.Contains(fails[1].Output, "smoke test of web2 failed") {
		t.Errorf("web2's smoke deliveries: %+v", fails)
	}
	if n := e.c.HookDelivery.Query().Where(hookdelivery.Ok(true), hookdelivery.Hook("smoke")).CountX(e.sys); n != 2 {
		t.Errorf("%d good smoke deliveries, want 2", n)
	}
	mu.Lock()
	if badSig != 0 || hooksSeen["web2/after_cutover"] != 0 || hooksSeen["web1/after_cutover"] != 1 {
		t.Errorf("bad signatures %d, deliveries %v", badSig, hooksSeen)
	}
	mu.Unlock()
	// The hook's outcome is in the migration's log (its cutover step's events).
	steps := e.cutoverSteps(web2.ID)
	evs := e.c.StepEvent.Query().Where().AllX(e.sys)
	found := false
	for _, ev := range evs {
		found = found || (ev.StepID == steps[0].ID && strings.Contains(ev.Message, "must succeed"))
	}
	if !found {
		t.Errorf("web2's cutover log does not say the must-succeed hook failed")
	}
}

// TestRestartBetweenSchedulingAndWindowKeepsTheTime: the server goes down
// after the wave was scheduled, its queue loses every task (as the
// embedded queue does), and the new process's reconciler picks the wave up
// from the database: the hosts cut over at the time first given, not
// before, and not at a new one.
func TestRestartBetweenSchedulingAndWindowKeepsTheTime(t *testing.T) {
	e := newEnv(t, 2)
	e.work()
	at := time.Now().Add(8 * time.Second).UTC().Truncate(time.Second)
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &at, StartedBy: "op"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both hosts started", time.Minute, func() bool { return e.migOf("web1") != nil && e.migOf("web2") != nil })
	e.stopWork()
	e.q.Close()
	for q := range map[string]bool{"critical": true, "default": true, "low": true} {
		e.open() // reconnect to delete
		e.q.Inspector.DeleteAllScheduledTasks(q)
		e.q.Inspector.DeleteAllPendingTasks(q)
		e.q.Inspector.DeleteAllRetryTasks(q)
		e.q.Close()
	}
	e.open() // the new process
	if n, err := e.o.Reconcile(e.sys); err != nil || n != 1 {
		t.Fatalf("reconcile: %d waves, %v", n, err)
	}
	// Again at once (a second replica starting, a retried start): the tick
	// of this second is queued already, which is not an error (asynq wraps
	// ErrTaskIDConflict).
	if n, err := e.o.Reconcile(e.sys); err != nil || n != 1 {
		t.Fatalf("second reconcile: %d waves, %v", n, err)
	}
	if _, err := e.l.Reconcile(e.sys); err != nil {
		t.Fatal(err)
	}
	e.work()
	w := e.waitWave("done", 3*time.Minute)
	if !w.RunCutoverAt.Equal(at) {
		t.Errorf("cutover time %v after the restart, want %v", w.RunCutoverAt, at)
	}
	for _, name := range []string{"web1", "web2"} {
		steps := e.cutoverSteps(e.migOf(name).ID)
		if len(steps) != 1 || steps[0].CreatedAt.Before(at) {
			t.Errorf("%s cut over at %v, before its time %v", name, steps[0].CreatedAt, at)
		}
	}
}

// TestHostOverrideCutsOverFirst: a host with its own cutover time cuts
// over at it while the others, ready, wait for the wave's time an hour
// ahead.
func TestHostOverrideCutsOverFirst(t *testing.T) {
	e := newEnv(t, 2)
	e.work()
	wave := time.Now().Add(time.Hour)
	own := time.Now().Add(2 * time.Second)
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &wave, HostCutoverAt: map[int]time.Time{e.hosts[1].ID: own}, StartedBy: "op"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web2 cut over", 3*time.Minute, func() bool { m := e.migOf("web2"); return m != nil && m.State == ferry.MigrationCutOver })
	waitFor(t, "web1 ready", 3*time.Minute, func() bool { m := e.migOf("web1"); return m != nil && m.State == ferry.MigrationCutoverReady })
	e.o.Advance(e.ctx, e.wave.ID)
	ms := e.members()
	if len(e.cutoverSteps(e.migOf("web1").ID)) != 0 || ms["web1"].RunState != wavemember.RunStateStarted || !strings.Contains(ms["web1"].RunMessage, "cuts over at") {
		t.Errorf("web1: %s %q, cutover steps %d; want it waiting for the wave's time", ms["web1"].RunState, ms["web1"].RunMessage, len(e.cutoverSteps(e.migOf("web1").ID)))
	}
	if w := e.getWave(); w.Status != "cutting_over" {
		t.Errorf("wave %s, want cutting_over (one host cut over)", w.Status)
	}
}

// TestMissingApprovalHoldsTheCutover: a wave whose cutover needs an
// admin's approval reaches its time with every host ready and waits, saying
// who must approve; an operator may not approve; an admin's approval lets
// it cut over, and the approval is on the wave row.
func TestMissingApprovalHoldsTheCutover(t *testing.T) {
	e := newEnv(t, 1)
	e.work()
	at := time.Now().Add(time.Second)
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &at, ApproverRole: "admin", StartedBy: "op"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the host ready past its time", 3*time.Minute, func() bool {
		m := e.migOf("web1")
		return m != nil && m.State == ferry.MigrationCutoverReady && time.Now().After(at)
	})
	e.o.Advance(e.ctx, e.wave.ID)
	w := e.getWave()
	if !strings.Contains(w.RunMessage, "waits for approval by a user with role admin") || len(e.cutoverSteps(e.migOf("web1").ID)) != 0 {
		t.Fatalf("wave %s %q, cutover steps %d; want it waiting for an admin", w.Status, w.RunMessage, len(e.cutoverSteps(e.migOf("web1").ID)))
	}
	err := e.o.ApproveWave(e.ctx, e.wave.ID, "op@example.com")
	if ferry.ErrorCode(err) != ferry.EFORBIDDEN || !strings.Contains(ferry.ErrorMessage(err), "role admin") {
		t.Fatalf("an operator's approval: %v, want forbidden naming the role", err)
	}
	admin := viewer.NewContext(e.ctx, &viewer.Viewer{TenantID: e.tenant.ID, Role: viewer.RoleAdmin, Email: "admin@example.com"})
	if err := e.o.ApproveWave(admin, e.wave.ID, "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	w = e.waitWave("done", 3*time.Minute)
	if w.ApprovedBy != "admin@example.com" || w.ApprovedAt == nil {
		t.Errorf("approval on the row: %q %v", w.ApprovedBy, w.ApprovedAt)
	}
	if steps := e.cutoverSteps(e.migOf("web1").ID); len(steps) != 1 || steps[0].CreatedAt.Before(*w.ApprovedAt) {
		t.Errorf("cutover steps %d; the first before the approval", len(steps))
	}
}

// TestBadInputIsRefusedAndChangesNothing: each bad start is a clear error
// naming what is wrong, and the wave stays planned with no migration.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	e := newEnv(t, 2)
	past := time.Now().Add(-time.Minute)
	soon := time.Now().Add(time.Hour)
	cases := []struct {
		name string
		req  ferry.WaveStart
		want string
	}{
		{"window in the past", ferry.WaveStart{CutoverAt: &past}, "is in the past"},
		{"dated windows closed", ferry.WaveStart{CutoverWindows: "2020-01-04 22:00-23:00"}, "before now"},
		{"windows unreadable", ferry.WaveStart{CutoverWindows: "Someday 22:00-04:00"}, "cutoverWindows"},
		{"cap of 0", ferry.WaveStart{CutoverAt: &soon, Parallel: ptr(0)}, "parallel 0: want at least 1"},
		{"no cutover time", ferry.WaveStart{}, "no cutover time"},
		{"http hook", ferry.WaveStart{CutoverAt: &soon, Hooks: []ferry.Hook{{Name: "dns", Point: ferry.HookAfterCutover, Kind: ferry.HookWebhook, URL: "http://dns.example.com/update", Secret: "x"}}}, "hooks[0] (dns): url \"http://dns.example.com/update\": webhooks must use https"},
		{"unsigned hook", ferry.WaveStart{CutoverAt: &soon, Hooks: []ferry.Hook{{Point: ferry.HookAfterCutover, Kind: ferry.HookWebhook, URL: "https://dns.example.com/update"}}}, "needs a secret"},
		{"script after launch", ferry.WaveStart{CutoverAt: &soon, Hooks: []ferry.Hook{{Point: ferry.HookAfterLaunch, Kind: ferry.HookScript, Script: "check.sh"}}}, "before_sync or before_cutover"},
		{"script path", ferry.WaveStart{CutoverAt: &soon, Hooks: []ferry.Hook{{Point: ferry.HookBeforeCutover, Kind: ferry.HookScript, Script: "../../bin/sh"}}}, "script \"../../bin/sh\""},
		{"endless timeout", ferry.WaveStart{CutoverAt: &soon, Hooks: []ferry.Hook{{Point: ferry.HookBeforeCutover, Kind: ferry.HookScript, Script: "stop-db", TimeoutSeconds: 86400}}}, "timeoutSeconds 86400"},
		{"rpo of seconds", ferry.WaveStart{CutoverAt: &soon, RPO: 10 * time.Second}, "rpo 10s"},
		{"no retention", ferry.WaveStart{CutoverAt: &soon, KeepLast: ptr(0), KeepDaily: ptr(0)}, "keeps no recovery point"},
		{"approver", ferry.WaveStart{CutoverAt: &soon, ApproverRole: "viewer"}, "approverRole \"viewer\""},
		{"foreign host", ferry.WaveStart{CutoverAt: &soon, HostCutoverAt: map[int]time.Time{123456: soon}}, "host 123456 is not a member"},
		{"host time past", ferry.WaveStart{CutoverAt: &soon, HostCutoverAt: map[int]time.Time{e.hosts[0].ID: past}}, "web1's time"},
		{"empty manual step", ferry.WaveStart{CutoverAt: &soon, ManualSteps: []string{"ok", " "}}, "manualSteps[1]"},
	}
	for _, c := range cases {
		_, err := e.o.StartWave(e.ctx, e.wave.ID, c.req)
		if ferry.ErrorCode(err) != ferry.EINVALID || !strings.Contains(ferry.ErrorMessage(err), c.want) {
			t.Errorf("%s: %v; want invalid saying %q", c.name, err, c.want)
		}
	}
	if w := e.getWave(); w.Status != "planned" || w.RunCutoverAt != nil {
		t.Fatalf("after bad starts the wave is %s, window %v", w.Status, w.RunCutoverAt)
	}
	if n := e.c.Migration.Query().CountX(e.sys); n != 0 {
		t.Fatalf("%d migrations after bad starts", n)
	}
	for _, m := range e.members() {
		if m.RunState != wavemember.RunStateIdle || m.CutoverAt != nil {
			t.Fatalf("member %+v changed by a bad start", m)
		}
	}
	// A good start, then a second one, then pause and resume.
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &soon}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &soon}); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("second start: %v, want conflict", err)
	}
	if err := e.o.ResumeWave(e.ctx, e.wave.ID, "op"); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("resume of a running wave: %v, want conflict", err)
	}
	if err := e.o.SetHostCutover(e.ctx, e.wave.ID, e.hosts[0].ID, &past); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Errorf("a host time in the past: %v", err)
	}
	if err := e.o.ApproveWave(e.ctx, e.wave.ID, "op"); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("approval of a wave that needs none: %v", err)
	}
}

// TestPauseStopsStartsAndTheQueuedHostStartsOnResume: with a cap of 1 and
// the wave paused, the queued host stays queued while the first finishes
// its initial copy; resumed, it starts.
func TestPauseStopsStartsAndTheQueuedHostStartsOnResume(t *testing.T) {
	e := newEnv(t, 2, "web3")
	e.work()
	soon := time.Now().Add(time.Hour)
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &soon, Parallel: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	if err := e.o.PauseWave(e.ctx, e.wave.ID, "op"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web1 past its initial copy", 3*time.Minute, func() bool {
		m := e.migOf("web1")
		return m != nil && !initialCopy(m.State)
	})
	e.o.Advance(e.ctx, e.wave.ID)
	if m := e.members()["web2"]; m.RunState != wavemember.RunStateQueued || m.MigrationID != nil || !strings.Contains(m.RunMessage, "paused") {
		t.Fatalf("web2 while paused: %s %q", m.RunState, m.RunMessage)
	}
	if err := e.o.ResumeWave(e.ctx, e.wave.ID, "op"); err != nil {
		t.Fatal(err)
	}
	if m := e.members()["web2"]; m.MigrationID == nil {
		t.Fatalf("web2 not started on resume: %s %q", m.RunState, m.RunMessage)
	}
	// A migration's own RPO and retention.
	web1 := e.migOf("web1")
	if err := e.l.SetMigrationSettings(e.ctx, web1.ID, ferry.MigrationSettings{RPO: ptr(10 * time.Second)}); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Errorf("an RPO of 10 s: %v", err)
	}
	if err := e.l.SetMigrationSettings(e.ctx, web1.ID, ferry.MigrationSettings{RPO: ptr(15 * time.Minute), KeepLast: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	got := e.migOf("web1").Settings
	if ret, _ := got["retention"].(map[string]any); got["rpoSeconds"] != float64(900) || ret["keepLast"] != float64(3) || got["wave"] != float64(e.wave.ID) {
		t.Errorf("settings after the change: %v", got)
	}
}

// TestHostNotReadyAtItsTimeIsHeld: a host without an agent never becomes
// ready; at the wave's time it is reported, and once the window closed the
// wave ends partially cut over, naming it, with the other host cut over.
func TestHostNotReadyAtItsTimeIsHeld(t *testing.T) {
	e := newEnv(t, 2, "web2")
	e.work()
	at := time.Now().Add(time.Second)
	end := time.Now().Add(20 * time.Second)
	rep, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &at, CutoverEndsAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.NoAgent) != 1 || rep.NoAgent[0] != e.hosts[1].ID {
		t.Fatalf("report %+v; want web2 without an agent", rep)
	}
	waitFor(t, "web1 cut over", 3*time.Minute, func() bool { m := e.migOf("web1"); return m != nil && m.State == ferry.MigrationCutOver })
	if w := e.getWave(); time.Now().Before(end) && (w.Status != "cutting_over" || !strings.Contains(w.RunMessage, "no agent: web2")) {
		t.Errorf("before the window closed: %s %q", w.Status, w.RunMessage)
	}
	w := e.waitWave("partially_cut_over", time.Minute)
	if !strings.Contains(w.RunMessage, "1 of 2") || !strings.Contains(w.RunMessage, "web2") {
		t.Errorf("wave message %q", w.RunMessage)
	}
}

// TestRefusedFinalPassEndsInARollbackNotAStuckWave: a must-succeed agent
// script before the cutover exits 1 on web1's agent, so the agent never
// sends the final pass; past the cutover bound the wave rolls web1 back
// alone and ends partially cut over, web2 cut over.
func TestRefusedFinalPassEndsInARollbackNotAStuckWave(t *testing.T) {
	e := newEnv(t, 2)
	os.WriteFile(filepath.Join(e.hooksDir, "quiesce"), []byte("#!/bin/sh\necho quiescing\nexit 0\n"), 0o755)
	os.WriteFile(filepath.Join(e.hooksDir, "quiesce-web1"), []byte("#!/bin/sh\necho 'database did not stop' >&2\nexit 1\n"), 0o755)
	e.o.CutoverTimeout = 5 * time.Second
	e.work()
	at := time.Now().Add(time.Second)
	// Both hosts run the wave's "quiesce"; web1's migration adds its own
	// "quiesce-web1" (a migration's hooks follow its wave's), which fails.
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &at, Hooks: []ferry.Hook{
		{Name: "quiesce", Point: ferry.HookBeforeCutover, Kind: ferry.HookScript, Script: "quiesce", MustSucceed: true, TimeoutSeconds: 5},
	}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web1 started", time.Minute, func() bool { return e.migOf("web1") != nil })
	m1 := e.migOf("web1")
	settings := m1.Settings
	settings["hooks"] = []any{map[string]any{"name": "quiesce-web1", "point": "before_cutover", "kind": "script", "script": "quiesce-web1", "mustSucceed": true, "timeoutSeconds": 5}}
	e.c.Migration.UpdateOneID(m1.ID).SetSettings(settings).ExecX(e.sys)
	w := e.waitWave("partially_cut_over", 3*time.Minute)
	ms := e.members()
	if ms["web2"].RunState != wavemember.RunStateCutOver || ms["web1"].RunState != wavemember.RunStateRolledBack || !strings.Contains(ms["web1"].RunMessage, "did not finish within 5s") {
		t.Errorf("web1 %s %q, web2 %s; wave %q", ms["web1"].RunState, ms["web1"].RunMessage, ms["web2"].RunState, w.RunMessage)
	}
}

// TestManualStepsHoldTheCutoverUntilTickedOff: a ready host past its time
// is not cut over while a manual runbook step is open; ticking it off (once:
// a second tick is a conflict) lets it cut over.
func TestManualStepsHoldTheCutoverUntilTickedOff(t *testing.T) {
	e := newEnv(t, 1)
	e.work()
	at := time.Now().Add(time.Second)
	if _, err := e.o.StartWave(e.ctx, e.wave.ID, ferry.WaveStart{CutoverAt: &at, ManualSteps: []string{"freeze changes", "tell the owner"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.o.TickWaveStep(e.ctx, e.wave.ID, 0, "op@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := e.o.TickWaveStep(e.ctx, e.wave.ID, 0, "op@example.com"); ferry.ErrorCode(err) != ferry.ECONFLICT {
		t.Errorf("second tick: %v", err)
	}
	if err := e.o.TickWaveStep(e.ctx, e.wave.ID, 7, "op@example.com"); ferry.ErrorCode(err) != ferry.EINVALID {
		t.Errorf("tick of step 7: %v", err)
	}
	waitFor(t, "the host ready past its time", 3*time.Minute, func() bool {
		m := e.migOf("web1")
		return m != nil && m.State == ferry.MigrationCutoverReady && time.Now().After(at)
	})
	e.o.Advance(e.ctx, e.wave.ID)
	if w := e.getWave(); !strings.Contains(w.RunMessage, "manual steps: tell the owner") || len(e.cutoverSteps(e.migOf("web1").ID)) != 0 {
		t.Fatalf("wave %q, cutover steps %d; want it waiting for 'tell the owner'", w.RunMessage, len(e.cutoverSteps(e.migOf("web1").ID)))
	}
	if err := e.o.TickWaveStep(e.ctx, e.wave.ID, 1, "owner@example.com"); err != nil {
		t.Fatal(err)
	}
	w := e.waitWave("done", 3*time.Minute)
	if by, _ := w.ManualSteps[1]["doneBy"].(string); by != "owner@example.com" {
		t.Errorf("manual steps on the row: %v", w.ManualSteps)
	}
}
