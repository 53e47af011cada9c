package app_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"entgo.io/ent/dialect"
	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/auditevent"
	"github.com/ferry-migrate/ferry/ent/schema"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/audit"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// auditRows returns every audit event by id, as stored.
func auditRows(t *testing.T, ts *testServer) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, e := range ts.App.DB.Client.AuditEvent.Query().AllX(viewer.SystemContext(t.Context())) {
		out[e.ID] = fmt.Sprintf("%d|%d|%s|%s|%s|%s|%s|%s|%v|%v|%s|%s", e.TenantID, e.Seq, e.CreatedAt.UTC(), e.Actor, e.Action,
			e.ObjectType, e.ObjectID, e.TraceID, e.Details, e.Changes, e.PrevHash, e.Hash)
	}
	return out
}

// assertAuditKept checks that every event of before is still there,
// unchanged, and that every tenant's chain verifies.
func assertAuditKept(t *testing.T, ts *testServer, before map[int]string) {
	t.Helper()
	after := auditRows(t, ts)
	for id, row := range before {
		if after[id] != row {
			t.Errorf("audit event %d changed or vanished:\n before %s\n after  %s", id, row, after[id])
		}
	}
	sys := viewer.SystemContext(t.Context())
	for _, tid := range ts.App.DB.Client.Tenant.Query().IDsX(sys) {
		rep, err := audit.Verify(t.Context(), ts.App.DB.Client, tid)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Errorf("tenant %d's audit chain: %v", tid, rep.Problems)
		}
	}
}

// TestAuditIsAppendOnly: the database itself refuses to change or delete an
// audit event (triggers), ent refuses before it gets there, mutations and
// sign-ins record actor, object, before/after, source address and trace id,
// and the chain verifies.
func TestAuditIsAppendOnly(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	d := admin.mustGQL(`mutation { createTenant(input: {name: "Acme", slug: "acme"}, ownerEmail: "o@acme.example", ownerPassword: "owner-password-1") { tenant { id } } }`, nil)
	acme := dig(d, "createTenant", "tenant", "id").(string)
	admin.mustGQL(`mutation($id: ID!) { updateTenant(id: $id, input: {name: "Acme Ltd"}) { id } }`, map[string]any{"id": acme})
	sys := viewer.SystemContext(t.Context())
	db := ts.App.DB.Client

	ev := db.AuditEvent.Query().Where(auditevent.Action("updateTenant")).FirstX(sys)
	if ev.Actor != "admin@example.com" || ev.ObjectType != "Tenant" || ev.ObjectID != acme || ev.TraceID == "" || ev.SourceIP != "127.0.0.1" || ev.Seq == 0 || ev.Hash == "" {
		t.Fatalf("updateTenant's event: %+v", ev)
	}
	if d := cmp.Diff(map[string]any{"name": map[string]any{"before": "Acme", "after": "Acme Ltd"}}, ev.Changes); d != "" {
		t.Fatalf("before/after summary (-want +got):\n%s", d)
	}
	signIn := db.AuditEvent.Query().Where(auditevent.Action("signIn")).FirstX(sys)
	if signIn.SourceIP != "127.0.0.1" || signIn.Seq == 0 {
		t.Fatalf("signIn event: %+v", signIn)
	}

	before := auditRows(t, ts)
	// ent: updates and deletes are refused by the hook.
	if err := db.AuditEvent.UpdateOneID(ev.ID).SetActor("someone-else").Exec(sys); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("ent update of an audit event: %v", err)
	}
	if _, err := db.AuditEvent.Delete().Exec(sys); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("ent delete of audit events: %v", err)
	}
	if err := schema.ErrAppendOnly; err == nil {
		t.Fatal("no ErrAppendOnly")
	}
	// The database: raw SQL below ent is refused by triggers.
	for _, q := range []string{`UPDATE audit_events SET actor = 'x'`, `DELETE FROM audit_events`} {
		if _, err := ts.App.DB.SQL.ExecContext(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the trigger's refusal", q, err)
		}
	}
	if ts.App.DB.Dialect == dialect.Postgres {
		if _, err := ts.App.DB.SQL.ExecContext(t.Context(), `TRUNCATE audit_events`); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("TRUNCATE: %v, want the trigger's refusal", err)
		}
	}
	assertAuditKept(t, ts, before)
}

// TestAuditChainShowsTampering: someone with the database's owner rights
// disables the triggers and deletes or edits an event; Verify names the
// gap and the altered row.
func TestAuditChainShowsTampering(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	for i := range 5 {
		c.mustGQL(`mutation($n: String!) { createAPIToken(name: $n) { token { id } } }`, map[string]any{"n": fmt.Sprint("t", i)})
	}
	sys := viewer.SystemContext(t.Context())
	db := ts.App.DB.Client
	tid := db.Tenant.Query().Where(tenant.Slug("default")).OnlyIDX(sys)
	rep, err := audit.Verify(t.Context(), db, tid)
	if err != nil || !rep.OK() || rep.Events < 6 {
		t.Fatalf("untouched chain: %+v, %v", rep, err)
	}
	evs := db.AuditEvent.Query().Where(auditevent.TenantID(tid)).Order(ent.Asc(auditevent.FieldSeq)).AllX(sys)
	off := []string{`DROP TRIGGER audit_events_no_update`, `DROP TRIGGER audit_events_no_delete`}
	if ts.App.DB.Dialect == dialect.Postgres {
		off = []string{`ALTER TABLE audit_events DISABLE TRIGGER USER`}
	}
	for _, q := range off {
		if _, err := ts.App.DB.SQL.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(q string, args ...any) {
		if _, err := ts.App.DB.SQL.ExecContext(t.Context(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`DELETE FROM audit_events WHERE id = $1`, evs[2].ID)
	exec(`UPDATE audit_events SET actor = 'nobody@example.com' WHERE id = $1`, evs[4].ID)
	rep, err = audit.Verify(t.Context(), db, tid)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, fmt.Sprintf("%d %s", p.Seq, p.What))
	}
	want := []string{fmt.Sprintf("%d missing", evs[2].Seq), fmt.Sprintf("%d relinked", evs[3].Seq), fmt.Sprintf("%d altered", evs[4].Seq)}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("problems found (-want +got):\n%s", d)
	}
	// Cutting the tail off shows at the head.
	exec(`DELETE FROM audit_events WHERE id = $1`, evs[len(evs)-1].ID)
	rep, _ = audit.Verify(t.Context(), db, tid)
	if last := rep.Problems[len(rep.Problems)-1]; !strings.HasPrefix(last.What, "head") {
		t.Fatalf("a truncated tail went unnoticed: %v", rep.Problems)
	}
}

// Events written at once by many requests of one tenant take distinct,
// gapless seqs: the chain head orders them.
func TestAuditChainUnderConcurrentWrites(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.gql(`mutation($n: String!) { createAPIToken(name: $n) { token { id } } }`, map[string]any{"n": fmt.Sprint("c", i)})
			if len(r.Errors) > 0 {
				t.Errorf("createAPIToken: %s", r.raw)
			}
		}()
	}
	wg.Wait()
	sys := viewer.SystemContext(t.Context())
	tid := ts.App.DB.Client.Tenant.Query().Where(tenant.Slug("default")).OnlyIDX(sys)
	rep, err := audit.Verify(t.Context(), ts.App.DB.Client, tid)
	if err != nil || !rep.OK() || rep.Events != 25 {
		t.Fatalf("after 24 concurrent mutations and a sign-in: %+v, %v", rep, err)
	}
}
