package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// refused checks that r is a limit refusal: code INVALID, the named limit in
// extensions, and a message naming the request's value and the limit.
func refused(t *testing.T, what string, r gqlResp, limit string, msg ...string) {
	t.Helper()
	if len(r.Errors) == 0 {
		t.Fatalf("%s: accepted: %.300s", what, r.raw)
	}
	e := r.Errors[0]
	if r.code() != "INVALID" || e.Extensions["limit"] != limit || e.Extensions["value"] == nil || e.Extensions["max"] == nil {
		t.Fatalf("%s: want INVALID over the %s limit, got %.400s", what, limit, r.raw)
	}
	value, _ := e.Extensions["value"].(float64)
	max, _ := e.Extensions["max"].(float64)
	want := fmt.Sprintf("the limit is %.0f", max)
	if !strings.Contains(e.Message, want) || !strings.Contains(e.Message, fmt.Sprintf("%.0f", value)) || value <= max {
		t.Fatalf("%s: message %q does not name the value %v and %q", what, e.Message, e.Extensions["value"], want)
	}
	for _, m := range msg {
		if !strings.Contains(e.Message, m) {
			t.Fatalf("%s: message %q does not say %q", what, e.Message, m)
		}
	}
	if r.Data != nil && len(r.Data) > 0 {
		t.Fatalf("%s: refused but answered data: %.300s", what, r.raw)
	}
}

func repeat(n int, s string) string { return strings.Repeat(s+" ", n) }

func aliased(n int, field string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "a%d: %s ", i, field)
	}
	return b.String()
}

// doublingFragments is n fragments each spreading the next twice.
func doublingFragments(n int) string {
	var b strings.Builder
	b.WriteString("{ viewer { ...F0 } } ")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Viewer { ...F%d ...F%d } ", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Viewer { role }", n)
	return b.String()
}

// TestRequestCostLimits sends each attack of issue 9 (items 2 and 3) to the
// real server as a viewer: each is refused before it runs, quickly, with
// INVALID and a message naming the limit and the value.
func TestRequestCostLimits(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createUser(input: {email: "vera@a.example", role: viewer}, password: "vera-password-1") { id } }`, nil)
	v := ts.login(t, "vera@a.example", "vera-password-1")

	cases := []struct {
		name, query, limit string
		msg                []string
	}{
		// 100,000 repeats took 441 s; 2,000 still took 0.5 s.
		{"repeated fields", "{ viewer { " + repeat(1000, "role") + "} }", "fields", []string{"1001 fields"}},
		{"repeated fields past the token limit", "{ viewer { " + repeat(3000, "role") + "} }", "tokens", []string{"3005 tokens"}},
		{"a 500 KB query", "{ viewer { " + repeat(100000, "role") + "} }", "queryBytes", []string{"500014 bytes"}},
		{"huge alias count", "{ " + aliased(300, "__typename") + "}", "aliases", []string{"300 aliases"}},
		{"deep fragments (24 each spreading the next twice)", doublingFragments(24), "fields", []string{"16777217 fields"}},
		{"wide fragments", "{ viewer { ...W ...W } } fragment W on Viewer { " + repeat(300, "...V") + "} fragment V on Viewer { role }", "fields", []string{"601 fields"}},
		// 50 took 2–3 s and answered 1.7 MB.
		{"introspection repeated by aliases", "{ " + aliased(50, "__schema { types { fields { type { fields { name type { name } } } } } }") + "}", "introspection", []string{"50 times"}},
		{"introspection repeated inside", "{ __schema { " + aliased(50, "types { fields { type { fields { name type { name } } } } }") + "} }", "introspectionAliases", []string{"50 aliases"}},
		{"deep query", "{ hosts(first: 1) { edges { node { application { hosts(first: 1) { edges { node { application { hosts(first: 1) { edges { node { application { name } } } } } } } } } } } } }", "depth", []string{"13 levels"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := v.gql(tc.query, nil)
			refused(t, tc.name, r, tc.limit, tc.msg...)
			t.Logf("refused in %v", time.Since(start))
		})
	}

	// One introspection, nested deeper than maxDepth by its ofType chain
	// (as GraphiQL's is), is answered.
	intro := v.gql(`{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name ofType { name ofType { name ofType { name ofType { name } } } } } } } } } } } }`, nil)
	if len(intro.Errors) > 0 || len(dig(intro.Data, "__schema", "types").([]any)) < 50 {
		t.Fatalf("introspection: %.300s", intro.raw)
	}

	// The same limits on GET, on an APQ registration and on a subscription
	// sent over the websocket.
	big := "{ viewer { " + repeat(1000, "role") + "} }"
	t.Run("GET", func(t *testing.T) {
		refused(t, "GET", v.get(big), "fields")
		if r := v.get(`{ viewer { role } }`); len(r.Errors) > 0 || dig(r.Data, "viewer", "role") != "viewer" {
			t.Fatalf("a small GET: %s", r.raw)
		}
	})
	t.Run("APQ", func(t *testing.T) {
		r := v.apq(big, true)
		refused(t, "APQ registration", r, "fields")
		if r := v.apq(big, false); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
			t.Fatalf("an over-limit query was stored as a persisted query: %s", r.raw)
		}
		small := `{ viewer { role } }`
		if r := v.apq(small, false); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
			t.Fatalf("unknown hash: %s", r.raw)
		}
		if r := v.apq(small, true); len(r.Errors) > 0 {
			t.Fatalf("APQ registration: %s", r.raw)
		}
		if r := v.apq(small, false); dig(r.Data, "viewer", "role") != "viewer" {
			t.Fatalf("APQ by hash: %s", r.raw)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		w, _, err := dialWS(t, v, v.base)
		if err != nil {
			t.Fatal(err)
		}
		w.subscribe("1", "subscription { migrationProgress { "+repeat(600, "id")+"} }", nil)
		m := w.next()
		var p struct {
			Errors []struct {
				Message    string
				Extensions map[string]any
			}
		}
		json.Unmarshal(m.Payload, &p)
		if m.ID != "1" || len(p.Errors) == 0 || p.Errors[0].Extensions["code"] != "INVALID" || p.Errors[0].Extensions["limit"] != "fields" ||
			!strings.Contains(p.Errors[0].Message, "601 fields") {
			t.Fatalf("over-limit subscription: %s %s", m.Type, m.Payload)
		}
	})
}

// get sends a GraphQL query as GET /graphql?query=….
func (c *client) get(query string) gqlResp {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+"/graphql?query="+url.QueryEscape(query), nil)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r gqlResp
	if err := json.Unmarshal(b, &r); err != nil {
		c.t.Fatalf("GET /graphql: not JSON (status %d): %s", resp.StatusCode, b)
	}
	r.status, r.raw = resp.StatusCode, string(b)
	return r
}

// apq posts an automatic persisted query: its hash, with the text when
// withText (registration), without it otherwise.
func (c *client) apq(query string, withText bool) gqlResp {
	c.t.Helper()
	sum := sha256.Sum256([]byte(query))
	body := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}}
	if withText {
		body["query"] = query
	}
	b, _ := json.Marshal(body)
	status, out := c.post("/graphql", string(b))
	var r gqlResp
	if err := json.Unmarshal(out, &r); err != nil {
		c.t.Fatalf("APQ: not JSON (status %d): %s", status, out)
	}
	r.status, r.raw = status, string(out)
	return r
}

// The plan screen's own query, as frontend/src/screens/plans/queries.ts sends it.
const planScreenQuery = `query Plan($id: ID!) { node(id: $id) { __typename ... on Plan {
	id name target status problems constraints metrics error infeasible unplaced warnings
	waves { id ordinal name status startsAt endsAt cutoverAt dataBytes replicationSeconds pilot hostCount
		members { id reason moveGroup manual host { id name } } } } } }`

// TestListFieldsPriced: over six real plans in SQLite, the short
// query through plain lists (plans → waves → members → host →
// waveMemberships → wave → plan → waves → members), whose answer grows with
// plans², is refused by complexity, while the plan screen's query for the
// same data returns every member.
func TestListFieldsPriced(t *testing.T) {
	ts := mustStart(t)
	const hosts = 200
	seedEstate(t, ts, hosts, 11)
	c := ts.login(t, "admin@example.com", adminPassword)
	var ids []string
	for i := 0; i < 6; i++ {
		d := c.mustGQL(generatePlanMutation, map[string]any{"in": planInput(fmt.Sprintf("plan-%d", i), nil)})
		ids = append(ids, dig(d, "generatePlan", "id").(string))
	}
	ctx, _ := defaultTenant(t, ts)
	members := ts.App.DB.Client.WaveMember.Query().CountX(ctx)
	if members < 6*hosts/2 {
		t.Fatalf("only %d wave members in 6 plans of %d hosts", members, hosts)
	}

	q := `{ plans { edges { node { name waves { name members { reason host { name waveMemberships { wave { name plan { name waves { name members { reason } } } } } } } } } } } }`
	if len(q) > 479 {
		t.Fatalf("the attack is %d bytes, more than the issue's 479", len(q))
	}
	r := c.gql(q, nil)
	refused(t, "nested plain lists", r, "complexity", "query costs")

	// One plan's screen: all its members come back.
	d := c.mustGQL(planScreenQuery, map[string]any{"id": ids[0]})
	got := 0
	for _, w := range dig(d, "node", "waves").([]any) {
		got += len(dig(w, "members").([]any))
	}
	p, err := ts.App.DB.Client.Plan.Query().Where(plan.Name("plan-0")).Only(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inPlan := 0
	for _, w := range p.QueryWaves().AllX(ctx) {
		inPlan += w.QueryMembers().CountX(ctx)
	}
	if got != inPlan || got == 0 {
		t.Fatalf("plan screen: %d members, the database holds %d", got, inPlan)
	}
}

// TestMutationsPerRequest: aliased mutations are capped, and a refused
// request changes nothing.
func TestMutationsPerRequest(t *testing.T) {
	ts := mustStart(t)
	seedEstate(t, ts, 20, 5)
	c := ts.login(t, "admin@example.com", adminPassword)
	ctx, _ := defaultTenant(t, ts)
	db := ts.App.DB.Client

	// Aliased generatePlan: the issue made 100 plans in one request. 100
	// aliases are over the alias limit already; two are over the mutations'.
	vars := map[string]any{"in": planInput("aliased", nil)}
	gp := func(n int) string {
		return "mutation($in: GeneratePlanInput!) { " + aliased(n, "generatePlan(input: $in) { id }") + "}"
	}
	refused(t, "100 aliased generatePlan", c.gql(gp(100), vars), "aliases", "100 aliases")
	refused(t, "2 aliased generatePlan", c.gql(gp(2), vars), "mutations", "generatePlan ×2", "weigh 20")
	if n := db.Plan.Query().CountX(ctx); n != 0 {
		t.Fatalf("a refused request made %d plans", n)
	}
	// One generatePlan alone runs.
	c.mustGQL(`mutation($in: GeneratePlanInput!) { generatePlan(input: $in) { id } }`, vars)
	if n := db.Plan.Query().CountX(ctx); n != 1 {
		t.Fatalf("%d plans after one generatePlan", n)
	}

	// Ten ordinary mutations in one request run (in one transaction); eleven
	// are refused whole.
	before := db.Host.Query().CountX(ctx)
	var eleven, ten strings.Builder
	for i := 0; i < 11; i++ {
		fmt.Fprintf(&eleven, "h%d: createHost(input: {name: \"over-%d\"}) { id } ", i, i)
		if i < 10 {
			fmt.Fprintf(&ten, "h%d: createHost(input: {name: \"ok-%d\"}) { id } ", i, i)
		}
	}
	refused(t, "11 createHost", c.gql("mutation { "+eleven.String()+"}", nil), "mutations", "createHost ×11", "weigh 11")
	if n := db.Host.Query().Where(host.NameHasPrefix("over-")).CountX(ctx); n != 0 {
		t.Fatalf("a refused request created %d hosts", n)
	}
	c.mustGQL("mutation { "+ten.String()+"}", nil)
	if n := db.Host.Query().CountX(ctx); n != before+10 {
		t.Fatalf("%d hosts after ten createHost, want %d", n, before+10)
	}

	// changePassword twice would guess two passwords past the sign-in limiter.
	r := c.gql(`mutation { a: changePassword(current: "guess-1-xxxx", new: "new-password-123") b: changePassword(current: "guess-2-xxxx", new: "new-password-123") }`, nil)
	refused(t, "two changePassword", r, "mutations", "changePassword ×2")
}

// TestWebsocketCarriesSubscriptionsOnly: a mutation sent over the websocket
// used to commit and then panic in a resolver (entgql's transaction read the
// end of the stream as a response); now queries and mutations are refused
// there, cleanly, before anything runs, and the socket keeps serving
// subscriptions.
func TestWebsocketCarriesSubscriptionsOnly(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	ctx := viewer.SystemContext(t.Context())
	audits := ts.App.DB.Client.AuditEvent.Query().CountX(ctx)
	w, _, err := dialWS(t, admin, admin.base)
	if err != nil {
		t.Fatal(err)
	}
	for id, q := range map[string]string{
		"m": `mutation { createHost(input: {name: "ws-host"}) { id name } }`,
		"q": `{ hosts { totalCount } }`,
	} {
		w.subscribe(id, q, nil)
		m := w.next()
		if m.ID != id || m.Type != "next" || !strings.Contains(string(m.Payload), `"code":"INVALID"`) ||
			!strings.Contains(string(m.Payload), "the websocket carries subscriptions only; send") {
			t.Fatalf("%s over the websocket: %s %s", id, m.Type, m.Payload)
		}
		if m := w.next(); m.ID != id || m.Type != "complete" {
			t.Fatalf("%s: want complete, got %s %s", id, m.Type, m.Payload)
		}
	}
	if n := ts.App.DB.Client.Host.Query().CountX(ctx); n != 0 {
		t.Fatalf("the refused mutation created %d hosts", n)
	}
	if n := ts.App.DB.Client.AuditEvent.Query().CountX(ctx); n != audits {
		t.Fatalf("the refused mutation wrote %d audit events", n-audits)
	}
	if strings.Contains(ts.Logs.String(), "panic") {
		t.Fatalf("a panic was logged:\n%s", ts.Logs.String())
	}
	// The same socket still serves a subscription.
	tid := ts.App.DB.Client.User.Query().FirstX(ctx).TenantID
	mg := newMigration(t, ts, tid, "web-01")
	w.subscribe("s", progressSub, map[string]any{"ids": []string{fmt.Sprint(mg.ID)}})
	if e := w.event(); e.ID != fmt.Sprint(mg.ID) {
		t.Fatalf("subscription after the refusals: %+v", e)
	}

	// A message over 1 MiB closes the socket (message too big) unread.
	pad, _ := json.Marshal(map[string]any{"query": progressSub, "variables": map[string]any{"pad": strings.Repeat("x", 1<<20)}})
	w.send(wsMsg{ID: "big", Type: "subscribe", Payload: pad})
	w.closes()
	// The server logs why the socket ended after the client has seen it close.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(ts.Logs.String(), "read limited at 1048577 bytes"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the socket did not end on the read limit:\n%s", ts.Logs.String())
		}
	}
}
