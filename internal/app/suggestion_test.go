package app_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/ent/applicationsuggestion"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/planner/estate"
)

const suggestionsQuery = `{ applicationSuggestions(first: 500, where: {status: open}, orderBy: {field: HOST_COUNT, direction: DESC}) {
	totalCount edges { node { id name environment extends hostCount members internalWeight externalWeight cohesion ports neighbours } } } }`

// TestApplicationSuggestions: on an estate without labels the consultant
// asks for suggestions, reads them with their evidence (figures checked
// against the rows), renames one, splits one and accepts one, which labels
// its hosts in the database; a viewer reads but cannot write, and another
// tenant sees none of it.
func TestApplicationSuggestions(t *testing.T) {
	ts := mustStart(t)
	e, _ := estate.Generate(estate.Options{Hosts: 300, Seed: 3, Labels: -1})
	insertEstate(t, ts, e)
	c := ts.login(t, "admin@example.com", adminPassword)
	tctx, _ := defaultTenant(t, ts)
	db := ts.App.DB.Client

	d := c.mustGQL(`mutation { suggestApplications { suggestions sharedServices labelConflicts } }`, nil)
	n := int(dig(d, "suggestApplications", "suggestions").(float64))
	if n < 10 {
		t.Fatalf("%d suggestions for 300 unlabelled hosts", n)
	}
	if got := db.ApplicationSuggestion.Query().Where(applicationsuggestion.StatusEQ(applicationsuggestion.StatusOpen)).CountX(tctx); got != n {
		t.Fatalf("payload says %d suggestions, the database holds %d", n, got)
	}
	// Asking again replaces, not adds.
	c.mustGQL(`mutation { suggestApplications { suggestions } }`, nil)
	if got := db.ApplicationSuggestion.Query().CountX(tctx); got != n {
		t.Fatalf("second run: %d rows, want %d", got, n)
	}
	list := c.mustGQL(suggestionsQuery, nil)
	if got := dig(list, "applicationSuggestions", "totalCount"); got != float64(n) {
		t.Fatalf("totalCount %v, want %d", got, n)
	}
	first := dig(list, "applicationSuggestions", "edges", 0, "node").(map[string]any)
	row := db.ApplicationSuggestion.GetX(tctx, mustID(t, first["id"]))
	if int(first["hostCount"].(float64)) != row.HostCount || int64(first["internalWeight"].(float64)) != row.InternalWeight ||
		len(first["members"].([]any)) != row.HostCount || row.InternalWeight <= 0 || row.Cohesion <= 0.5 || len(first["ports"].([]any)) == 0 {
		t.Fatalf("evidence shown %v, stored %+v", first, row)
	}

	id := first["id"]
	c.mustGQL(`mutation($id: ID!) { renameApplicationSuggestion(id: $id, name: "orders") { name } }`, map[string]any{"id": id})
	// Split one host off, then accept the rest under its new name.
	members := first["members"].([]any)
	off := members[0].(map[string]any)["id"]
	sp := c.mustGQL(`mutation($id: ID!, $h: [ID!]!) { splitApplicationSuggestion(id: $id, hostIds: $h, name: "orders-db") { id name hostCount internalWeight } }`,
		map[string]any{"id": id, "h": []any{off}})
	parts := dig(sp, "splitApplicationSuggestion").([]any)
	if len(parts) != 2 || dig(parts[0], "name") != "orders" || dig(parts[1], "name") != "orders-db" ||
		int(dig(parts[0], "hostCount").(float64)) != len(members)-1 || int(dig(parts[1], "hostCount").(float64)) != 1 {
		t.Fatalf("split gave %v", parts)
	}
	keep := dig(parts[0], "id")
	acc := c.mustGQL(`mutation($id: ID!) { acceptApplicationSuggestion(id: $id) { id name } }`, map[string]any{"id": keep})
	appID := mustID(t, dig(acc, "acceptApplicationSuggestion", "id"))
	if got := db.Host.Query().Where(host.ApplicationID(appID)).CountX(tctx); got != len(members)-1 {
		t.Fatalf("accepted application holds %d hosts, want %d", got, len(members)-1)
	}
	if r := c.gql(`mutation($id: ID!) { acceptApplicationSuggestion(id: $id) { id } }`, map[string]any{"id": keep}); r.code() != "CONFLICT" {
		t.Fatalf("accepting twice: %s", r.raw)
	}
	if r := c.gql(`mutation($id: ID!, $h: [ID!]!) { splitApplicationSuggestion(id: $id, hostIds: $h) { id } }`, map[string]any{"id": dig(parts[1], "id"), "h": []any{"999"}}); r.code() != "INVALID" {
		t.Fatalf("split with a foreign host: %s", r.raw)
	}

	// A viewer reads, cannot write.
	c.mustGQL(`mutation { createUser(input: {email: "vic@a.example", role: viewer}, password: "viewer-password-1") { id } }`, nil)
	v := ts.login(t, "vic@a.example", "viewer-password-1")
	if got := dig(v.mustGQL(suggestionsQuery, nil), "applicationSuggestions", "totalCount"); got != float64(n) {
		t.Fatalf("viewer reads %v suggestions, want %d", got, n)
	}
	for _, m := range []string{`mutation { suggestApplications { suggestions } }`,
		fmt.Sprintf(`mutation { acceptApplicationSuggestion(id: %q) { id } }`, fmt.Sprint(dig(parts[1], "id")))} {
		if r := v.gql(m, nil); r.code() != "FORBIDDEN" {
			t.Fatalf("viewer ran %s: %s", m, r.raw)
		}
	}
	// Tenant B sees and touches nothing of A's.
	c.mustGQL(`mutation { createTenant(input: {name: "Bank B", slug: "bank-b"}, ownerEmail: "bob@b.example", ownerPassword: "bob-password-12") { tenant { id } } }`, nil)
	b := ts.login(t, "bob@b.example", "bob-password-12")
	if got := dig(b.mustGQL(suggestionsQuery, nil), "applicationSuggestions", "totalCount"); got != float64(0) {
		t.Fatalf("tenant B lists %v of A's suggestions", got)
	}
	if r := b.gql(`mutation($id: ID!) { renameApplicationSuggestion(id: $id, name: "x") { id } }`, map[string]any{"id": dig(parts[1], "id")}); r.code() != "NOT_FOUND" {
		t.Fatalf("tenant B renamed A's suggestion: %s", r.raw)
	}
}

func mustID(t *testing.T, v any) int {
	t.Helper()
	var id int
	if _, err := fmt.Sscan(fmt.Sprint(v), &id); err != nil {
		t.Fatalf("id %v: %v", v, err)
	}
	return id
}

// TestGeneratePlanWaveRulesAndSharedServices: the wave rules and the
// shared-service policy travel through the API into the plan; the plan
// stores its shared services, wave ratings and fresh suggestions; a bad
// policy is refused naming the field.
func TestGeneratePlanWaveRulesAndSharedServices(t *testing.T) {
	ts := mustStart(t)
	seedEstate(t, ts, 400, 3)
	c := ts.login(t, "admin@example.com", adminPassword)
	tctx, _ := defaultTenant(t, ts)
	off := false
	in := planInput("rules", map[string]any{
		"waveRules": map[string]any{"devTestFirst": off, "workloadMin": 5},
		"rules":     map[string]any{"sharedServices": map[string]any{"policy": "on_premises", "portCallers": 15}},
	})
	p := dig(c.mustGQL(generatePlanMutation, map[string]any{"in": in}), "generatePlan").(map[string]any)
	if p["status"] != "ready" && p["status"] != "infeasible" {
		t.Fatalf("status %v: %v", p["status"], p["error"])
	}
	d := c.mustGQL(`query($id: ID!) { node(id: $id) { ... on Plan { sharedServices metrics waves { confidence risk riskFactors hostCount } } } }`, map[string]any{"id": p["id"]})
	shared := dig(d, "node", "sharedServices").([]any)
	if len(shared) == 0 {
		t.Fatalf("no shared services found in a 400-host generated estate")
	}
	for _, s := range shared {
		if dig(s, "policy") != "on_premises" || dig(s, "wave") != float64(0) {
			t.Fatalf("shared service %v: want on_premises, wave 0", s)
		}
	}
	if got := dig(d, "node", "metrics", "kept_on_premises"); got != float64(len(shared)) {
		t.Fatalf("kept_on_premises %v, %d shared services", got, len(shared))
	}
	placed := 0
	for _, w := range dig(d, "node", "waves").([]any) {
		if dig(w, "confidence") == "" || dig(w, "risk") == "" {
			t.Fatalf("wave unrated: %v", w)
		}
		placed += int(dig(w, "hostCount").(float64))
	}
	if placed+len(shared) != 400 {
		t.Fatalf("%d placed + %d on-premises != 400", placed, len(shared))
	}
	// Generating the plan refreshed the suggestions.
	if n := ts.App.DB.Client.ApplicationSuggestion.Query().CountX(tctx); n == 0 {
		t.Fatalf("plan generation wrote no suggestions")
	}
	bad := planInput("bad", map[string]any{"rules": map[string]any{"sharedServices": map[string]any{"policy": "sideways"}}})
	if r := c.gql(generatePlanMutation, map[string]any{"in": bad}); r.code() != "INVALID" || !strings.Contains(r.raw, "rules.shared_services.policy") {
		t.Fatalf("bad policy: %s", r.raw)
	}
}
