package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/stepevent"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// TestWaveRunThroughTheAPI: startWave refuses a time in the past and an
// http webhook, then starts a wave whose webhook secret never comes back
// (not in any answer, not in the row in plain text); the runbook and the
// progress agree with the database; and reading a wave of 50 members costs
// the same number of statements as one of 5 (no query per host).
func TestWaveRunThroughTheAPI(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	db := ts.App.DB.Client
	sys := viewer.SystemContext(t.Context())
	tid := db.Tenant.Query().Where(tenant.Slug("default")).OnlyIDX(sys)
	ctx := viewer.TenantContext(t.Context(), tid)
	newWave := func(n int) *ent.Wave {
		p := db.Plan.Create().SetName(fmt.Sprintf("p%d", n)).SetStatus(plan.StatusReady).SaveX(ctx)
		w := db.Wave.Create().SetPlan(p).SetOrdinal(1).SetName(fmt.Sprintf("wave of %d", n)).SaveX(ctx)
		for i := 0; i < n; i++ {
			h := db.Host.Create().SetName(fmt.Sprintf("w%d-h%03d", n, i)).SaveX(ctx)
			db.WaveMember.Create().SetWave(w).SetHost(h).ExecX(ctx)
		}
		return w
	}
	w := newWave(5)
	start := `mutation($id: ID!, $in: StartWaveInput) { startWave(waveId: $id, input: $in) { started queued noAgent wave { id status runCutoverAt } } }`
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	errs := c.gql(start, map[string]any{"id": w.ID, "in": map[string]any{"cutoverAt": past}})
	if len(errs.Errors) == 0 || !strings.Contains(errs.Errors[0].Message, "is in the past") || errs.code() != "INVALID" {
		t.Fatalf("a cutover time in the past: %+v", errs.Errors)
	}
	at := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	hooks := []any{map[string]any{"name": "dns", "point": "after_cutover", "kind": "webhook", "url": "http://dns.example.com/", "secret": "topsecret-1234"}}
	errs = c.gql(start, map[string]any{"id": w.ID, "in": map[string]any{"cutoverAt": at.Format(time.RFC3339), "hooks": hooks}})
	if len(errs.Errors) == 0 || !strings.Contains(errs.Errors[0].Message, "must use https") {
		t.Fatalf("an http webhook: %+v", errs.Errors)
	}
	hooks[0].(map[string]any)["url"] = "https://dns.example.com/update"
	d := c.mustGQL(start, map[string]any{"id": w.ID, "in": map[string]any{"cutoverAt": at.Format(time.RFC3339), "hooks": hooks, "approverRole": "admin", "manualSteps": []string{"freeze"}}})
	if got := dig(d, "startWave", "noAgent").([]any); len(got) != 5 || dig(d, "startWave", "wave", "status") != "replicating" {
		t.Fatalf("start: %v", d)
	}
	read := `query($id: ID!) { node(id: $id) { ... on Wave { status runMessage approverRole hooks { name url signed }
		manualSteps { name doneBy } progress { hosts byState { state count } nextCutoverAt }
		runbook { host { name } member { runState } migration { id } steps { kind status events { message } } hookDeliveries { ok } } } } }`
	d = c.mustGQL(read, map[string]any{"id": w.ID})
	b, _ := json.Marshal(d)
	if strings.Contains(string(b), "topsecret") || !strings.Contains(string(b), `"signed":true`) {
		t.Errorf("the wave's answer: %s", b)
	}
	row := db.Wave.GetX(ctx, w.ID)
	if raw, _ := json.Marshal(row.RunSettings); strings.Contains(string(raw), "topsecret") {
		t.Errorf("the secret is stored in plain text: %s", raw)
	}
	noAgent := db.WaveMember.Query().Where(wavemember.RunStateEQ(wavemember.RunStateNoAgent)).CountX(ctx)
	if byState := dig(d, "node", "progress", "byState").([]any); len(byState) != 1 || fmt.Sprint(byState[0]) != fmt.Sprintf("map[count:%d state:no_agent]", noAgent) {
		t.Errorf("progress by state %v; the database has %d members without an agent", byState, noAgent)
	}
	if !strings.Contains(fmt.Sprint(dig(d, "node", "runMessage")), "approval by a user with role admin and the runbook's manual steps: freeze") {
		t.Errorf("run message %q", dig(d, "node", "runMessage"))
	}

	// Statements per read: give every member a migration with steps,
	// events and deliveries, then read waves of 5 and of 50.
	seed := func(w *ent.Wave) {
		for _, m := range w.QueryMembers().WithHost().AllX(ctx) {
			mig := db.Migration.Create().SetHostID(m.Edges.Host.ID).SetState(ferry.MigrationSyncing).SaveX(ctx)
			db.WaveMember.UpdateOneID(m.ID).SetMigrationID(mig.ID).SetRunState(wavemember.RunStateStarted).ExecX(ctx)
			for _, kind := range []string{"prepare", "sync"} {
				s := db.Step.Create().SetMigrationID(mig.ID).SetKind(kind).SaveX(ctx)
				for i := 0; i < 3; i++ {
					db.StepEvent.Create().SetStepID(s.ID).SetLevel(stepevent.LevelInfo).SetMessage(fmt.Sprintf("%s %d", kind, i)).ExecX(ctx)
				}
			}
			db.HookDelivery.Create().SetMigrationID(mig.ID).SetPoint("before_sync").SetKind("webhook").SetOk(true).ExecX(ctx)
		}
	}
	count := func(w *ent.Wave) (int64, int) {
		before := ts.SQL.n.Load()
		d := c.mustGQL(read, map[string]any{"id": w.ID})
		return ts.SQL.n.Load() - before, len(dig(d, "node", "runbook").([]any))
	}
	small, large := newWave(5), newWave(50)
	seed(small)
	seed(large)
	ns, hs := count(small)
	nl, hl := count(large)
	if hs != 5 || hl != 50 {
		t.Fatalf("runbooks of %d and %d hosts, want 5 and 50", hs, hl)
	}
	if nl != ns {
		t.Fatalf("statements grew with members: %d for 5, %d for 50 (a query per host)", ns, nl)
	}
	t.Logf("%d SQL statements to read a wave's run and runbook, for 5 and for 50 hosts", ns)
}
