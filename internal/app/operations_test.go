package app_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// heartbeat posts an agent heartbeat with credential and returns the status and body.
func heartbeat(t *testing.T, ts *testServer, credential string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.URL+agentapi.PathHeartbeat, strings.NewReader(`{"agent_version":"test","sent_at":"2026-01-01T00:00:00Z"}`))
	req.Header.Set("Authorization", "Bearer "+credential)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOperatorConsole: the platform operator reads every tenant's usage
// (figures checked against the database), suspends a tenant — its users'
// API calls, sign-ins and agents are refused with the reason, its data
// kept — resumes it, and retries a failed task.
func TestOperatorConsole(t *testing.T) {
	ts := mustStart(t, func(c *app.Config) { c.Workers = 0 })
	admin := ts.login(t, "admin@example.com", adminPassword)
	d := admin.mustGQL(`mutation { createTenant(input: {name: "Acme", slug: "acme"}, ownerEmail: "o@acme.example", ownerPassword: "owner-password-1") { tenant { id } } }`, nil)
	acme, _ := strconv.Atoi(dig(d, "createTenant", "tenant", "id").(string))
	db := ts.App.DB.Client
	actx := viewer.TenantContext(t.Context(), acme)
	var hosts []int
	for i := range 3 {
		hosts = append(hosts, db.Host.Create().SetName(fmt.Sprint("acme-", i)).SaveX(actx).ID)
	}
	db.Migration.Create().SetHostID(hosts[0]).SetBytesDone(5 << 20).SetState(ferry.MigrationSyncing).SaveX(actx)
	db.Migration.Create().SetHostID(hosts[1]).SetBytesDone(7 << 20).SetState(ferry.MigrationCutOver).SaveX(actx)
	cred := "agent-credential-acme"
	db.Agent.Create().SetName("a1").SetCredentialHash([]byte(agentapi.HashCredential(cred))).SaveX(actx)

	u := admin.mustGQL(`{ tenantUsage { tenant { slug } hosts agents migrationsInFlight bytesMoved } }`, nil)
	var got string
	for _, row := range u["tenantUsage"].([]any) {
		if dig(row, "tenant", "slug") == "acme" {
			got = fmt.Sprintf("%v %v %v %.0f", dig(row, "hosts"), dig(row, "agents"), dig(row, "migrationsInFlight"), dig(row, "bytesMoved"))
		}
	}
	if want := fmt.Sprintf("3 1 1 %d", 12<<20); got != want {
		t.Fatalf("acme's usage = %q, want %q (hosts agents in-flight bytes)", got, want)
	}

	owner := ts.login(t, "o@acme.example", "owner-password-1")
	if st, body := heartbeat(t, ts, cred); st != 200 {
		t.Fatalf("agent before the suspension: %d %s", st, body)
	}
	admin.mustGQL(`mutation($id: ID!) { suspendTenant(id: $id, reason: "subscription expired") { id suspendedAt } }`, map[string]any{"id": acme})
	r := owner.gql(`{ hosts { totalCount } }`, nil)
	if r.code() != "FORBIDDEN" || !strings.Contains(r.raw, `tenant \"Acme\" is suspended since`) || !strings.Contains(r.raw, "subscription expired") || !strings.Contains(r.raw, "its data is kept") {
		t.Fatalf("a suspended tenant's API call: %d %s", r.status, r.raw)
	}
	if st, body, _ := ts.anon(t).signIn("o@acme.example", "owner-password-1"); st != http.StatusForbidden || !strings.Contains(body, "is suspended") {
		t.Fatalf("a suspended tenant's sign-in: %d %s", st, body)
	}
	deadline := time.Now().Add(10 * time.Second) // agent credentials are cached for 5 s
	for {
		st, body := heartbeat(t, ts, cred)
		if st == http.StatusForbidden && strings.Contains(body, agentapi.CodeSuspended) && strings.Contains(body, "subscription expired") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a suspended tenant's agent: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
	if n := db.Host.Query().CountX(actx); n != 3 {
		t.Fatalf("suspension deleted hosts: %d left", n)
	}
	// The operator's home is never suspended.
	def := dig(admin.mustGQL(`{ viewer { tenant { id } } }`, nil), "viewer", "tenant", "id")
	if r := admin.gql(`mutation($id: ID!) { suspendTenant(id: $id, reason: "x") { id } }`, map[string]any{"id": def}); r.code() != "CONFLICT" {
		t.Fatalf("suspending the operator's home: %s", r.raw)
	}
	admin.mustGQL(`mutation($id: ID!) { resumeTenant(id: $id) { id suspendedAt } }`, map[string]any{"id": acme})
	owner.mustGQL(`{ hosts { totalCount } }`, nil)
	if st, body := heartbeat(t, ts, cred); st != 200 {
		t.Fatalf("agent after resuming: %d %s", st, body)
	}

	// A failed task, listed and run again.
	info, err := ts.App.Queue.Client.Enqueue(asynq.NewTask("test:fails", []byte(`{}`)), asynq.Queue("default"), asynq.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.App.Queue.Inspector.ArchiveTask("default", info.ID); err != nil {
		t.Fatal(err)
	}
	f := admin.mustGQL(`{ failedTasks(queue: "default") { id type state } platformQueues { name archived } }`, nil)
	if fmt.Sprint(f["failedTasks"]) != fmt.Sprintf("[map[id:%s state:archived type:test:fails]]", info.ID) {
		t.Fatalf("failed tasks: %v", f["failedTasks"])
	}
	if !strings.Contains(fmt.Sprint(f["platformQueues"]), "map[archived:1 name:default]") {
		t.Fatalf("queues: %v", f["platformQueues"])
	}
	rt := admin.mustGQL(`mutation($id: String!) { retryTask(queue: "default", id: $id) { id state } }`, map[string]any{"id": info.ID})
	if dig(rt, "retryTask", "state") != "pending" {
		t.Fatalf("retried task: %v", rt)
	}
	if r := admin.gql(`mutation($id: String!) { retryTask(queue: "default", id: $id) { id } }`, map[string]any{"id": info.ID}); r.code() != "CONFLICT" {
		t.Fatalf("retrying a pending task: %s", r.raw)
	}
	// The audit log has the operator's actions.
	a := admin.mustGQL(`{ auditEvents(where: {actionIn: ["suspendTenant", "resumeTenant", "retryTask"]}) { totalCount } }`, nil)
	if n := dig(a, "auditEvents", "totalCount"); n != float64(5) { // suspend+resume in both tenants' logs, retry in the operator's
		t.Fatalf("audit events of the console's actions: %v", n)
	}
}
