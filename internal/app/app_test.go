package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

const createHost = `mutation($in: CreateHostInput!) { createHost(input: $in) { id name } }`

// twoTenants sets up tenant A (the default tenant, with a consultant) and
// tenant B (created by the platform operator, with its owner), each with hosts.
type twoTenants struct {
	ts                   *testServer
	admin, a, b          *client
	hostA, hostB, hostB2 string
	connB                string
}

func setupTenants(t *testing.T) *twoTenants {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createUser(input: {email: "alice@a.example", role: consultant}, password: "alice-password-1") { id } }`, nil)
	d := admin.mustGQL(`mutation { createTenant(input: {name: "Bank B", slug: "bank-b"}, ownerEmail: "bob@b.example", ownerPassword: "bob-password-12") { tenant { id } owner { role } oneTimePassword } }`, nil)
	if got := dig(d, "createTenant", "owner", "role"); got != "owner" {
		t.Fatalf("owner role = %v", got)
	}
	if dig(d, "createTenant", "oneTimePassword") != nil {
		t.Fatalf("a one-time password was returned although one was given")
	}
	tt := &twoTenants{ts: ts, admin: admin, a: ts.login(t, "alice@a.example", "alice-password-1"), b: ts.login(t, "bob@b.example", "bob-password-12")}
	tt.hostA = dig(tt.a.mustGQL(createHost, map[string]any{"in": map[string]any{"name": "a-web01"}}), "createHost", "id").(string)
	tt.hostB = dig(tt.b.mustGQL(createHost, map[string]any{"in": map[string]any{"name": "b-db01"}}), "createHost", "id").(string)
	tt.hostB2 = dig(tt.b.mustGQL(createHost, map[string]any{"in": map[string]any{"name": "b-app01"}}), "createHost", "id").(string)
	// A connection inside tenant B, written through ent directly as discovery would.
	ctx := viewer.TenantContext(t.Context(), 0)
	_ = ctx
	return tt
}

func TestSignIn(t *testing.T) {
	ts := mustStart(t)
	c := ts.anon(t)
	if status, body := c.post("/auth/login", `{"email":"admin@example.com","password":"wrong-password"}`); status != 401 || !strings.Contains(string(body), "wrong email or password") {
		t.Fatalf("wrong password: %d %s", status, body)
	}
	if status, body := c.post("/auth/login", `{"email":`); status != 400 || !strings.Contains(string(body), "must be JSON") {
		t.Fatalf("malformed body: %d %s", status, body)
	}
	if status, body := c.post("/auth/login", `{"email":"nobody@example.com","password":"whatever-123"}`); status != 401 || !strings.Contains(string(body), "wrong email or password") {
		t.Fatalf("unknown user must read like a wrong password: %d %s", status, body)
	}
	ok := ts.login(t, "ADMIN@example.com ", adminPassword)
	r := ok.gql(`{ viewer { role platform user { email } tenant { name } } }`, nil)
	if dig(r.Data, "viewer", "user", "email") != "admin@example.com" || dig(r.Data, "viewer", "platform") != true {
		t.Fatalf("viewer: %s", r.raw)
	}
	// Logged, but the password is never written to the log.
	if strings.Contains(ts.Logs.String(), adminPassword) || strings.Contains(ts.Logs.String(), "wrong-password") {
		t.Fatalf("a password reached the log")
	}
	if !strings.Contains(ts.Logs.String(), `"msg":"sign-in failed"`) {
		t.Fatalf("failed sign-ins are not logged")
	}
}

func TestCSRFAndSession(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	csrf := c.csrf
	c.csrf = ""
	if r := c.gql(createHost, map[string]any{"in": map[string]any{"name": "x"}}); r.status != 403 || r.code() != "FORBIDDEN" {
		t.Fatalf("mutation without CSRF header: %d %s", r.status, r.raw)
	}
	c.csrf = "forged"
	if r := c.gql(`{ viewer { role } }`, nil); r.status != 403 {
		t.Fatalf("POST with a forged CSRF token: %d %s", r.status, r.raw)
	}
	c.csrf = csrf
	if status, _ := c.post("/auth/logout", ``); status != 200 {
		t.Fatalf("logout: %d", status)
	}
	if r := c.gql(`{ viewer { role } }`, nil); r.status != 401 || r.code() != "UNAUTHENTICATED" {
		t.Fatalf("after logout: %d %s", r.status, r.raw)
	}
}

func TestAPITokens(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	d := c.mustGQL(`mutation { createAPIToken(name: "ci") { secret token { id prefix name } } }`, nil)
	secret := dig(d, "createAPIToken", "secret").(string)
	id := dig(d, "createAPIToken", "token", "id").(string)
	if !strings.HasPrefix(secret, "fat_") || !strings.HasPrefix(secret, dig(d, "createAPIToken", "token", "prefix").(string)) {
		t.Fatalf("secret %q does not match its prefix", secret)
	}
	script := ts.anon(t)
	script.token = secret
	if got := dig(script.mustGQL(`{ viewer { user { email } } }`, nil), "viewer", "user", "email"); got != "admin@example.com" {
		t.Fatalf("token viewer = %v", got)
	}
	// The secret is shown once: no field returns it later.
	list := c.gql(`{ apiTokens(first: 10) { edges { node { id name prefix } } } }`, nil)
	if strings.Contains(list.raw, secret) {
		t.Fatalf("the token secret is readable after creation")
	}
	if r := c.gql(`{ apiTokens(first: 1) { edges { node { tokenHash } } } }`, nil); r.code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("tokenHash must not be in the schema: %s", r.raw)
	}
	c.mustGQL(`mutation($id: ID!) { revokeAPIToken(id: $id) { revokedAt } }`, map[string]any{"id": id})
	if r := script.gql(`{ viewer { role } }`, nil); r.status != 401 || !strings.Contains(r.raw, "revoked") {
		t.Fatalf("revoked token: %d %s", r.status, r.raw)
	}
	bad := ts.anon(t)
	bad.token = "fat_not-a-real-token"
	if r := bad.gql(`{ viewer { role } }`, nil); r.status != 401 || !strings.Contains(r.raw, "unknown API token") {
		t.Fatalf("unknown token: %d %s", r.status, r.raw)
	}
}

func TestTenantIsolation(t *testing.T) {
	tt := setupTenants(t)
	// Lists: each tenant sees only its own hosts.
	for _, c := range []struct {
		who  *client
		want string
		not  string
	}{{tt.a, "a-web01", "b-db01"}, {tt.b, "b-db01", "a-web01"}} {
		r := c.who.mustGQL(`{ hosts(first: 100) { totalCount edges { node { name } } } }`, nil)
		raw := fmt.Sprint(r)
		if !strings.Contains(raw, c.want) || strings.Contains(raw, c.not) {
			t.Fatalf("hosts list leaks across tenants: %s", raw)
		}
	}
	// node(id) of another tenant's host resolves to nothing.
	r := tt.a.gql(`query($id: ID!) { node(id: $id) { id ... on Host { name } } }`, map[string]any{"id": tt.hostB})
	if dig(r.Data, "node") != nil || r.code() != "NOT_FOUND" {
		t.Fatalf("node(id) across tenants: %s", r.raw)
	}
	r = tt.a.gql(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{tt.hostA, tt.hostB}})
	if strings.Contains(r.raw, tt.hostB+`"`) && !strings.Contains(r.raw, "NOT_FOUND") {
		t.Fatalf("nodes(ids) across tenants: %s", r.raw)
	}
	// Updating or deleting another tenant's host is "not found".
	r = tt.a.gql(`mutation($id: ID!) { updateHost(id: $id, input: {name: "pwned"}) { id } }`, map[string]any{"id": tt.hostB})
	if r.code() != "NOT_FOUND" {
		t.Fatalf("update across tenants: %s", r.raw)
	}
	// Nested edges: linking another tenant's host into my application is refused.
	r = tt.a.gql(`mutation($h: ID!) { createApplication(input: {name: "steal", hostIDs: [$h]}) { id } }`, map[string]any{"h": tt.hostB})
	if r.code() != "NOT_FOUND" || !strings.Contains(r.Errors[0].Message, "not found") {
		t.Fatalf("nested edge across tenants: %s", r.raw)
	}
	// B's application with B's hosts, read through A's nested query, stays invisible.
	tt.b.mustGQL(`mutation($h: ID!, $h2: ID!) { createApplication(input: {name: "core-banking", hostIDs: [$h, $h2]}) { id } }`, map[string]any{"h": tt.hostB, "h2": tt.hostB2})
	ra := tt.a.mustGQL(`{ applications(first: 10) { edges { node { name hosts(first: 10) { edges { node { name } } } } } } hosts(first: 10) { edges { node { application { name } } } } }`, nil)
	if strings.Contains(fmt.Sprint(ra), "core-banking") || strings.Contains(fmt.Sprint(ra), "b-db01") {
		t.Fatalf("nested edges leak: %v", ra)
	}
	rb := tt.b.mustGQL(`{ applications(first: 10) { edges { node { name hosts(first: 10) { totalCount } } } } }`, nil)
	if got := dig(rb, "applications", "edges", 0, "node", "hosts", "totalCount"); got != float64(2) {
		t.Fatalf("B's own application has %v hosts, want 2", got)
	}
	// Tenants list: a tenant user sees only its own; the platform operator sees all.
	if got := dig(tt.b.mustGQL(`{ tenants(first: 10) { totalCount } }`, nil), "tenants", "totalCount"); got != float64(1) {
		t.Fatalf("tenant owner sees %v tenants", got)
	}
	if got := dig(tt.admin.mustGQL(`{ tenants(first: 10) { totalCount } }`, nil), "tenants", "totalCount"); got != float64(2) {
		t.Fatalf("platform operator sees %v tenants", got)
	}
	// Roles: a consultant cannot create users or tenants.
	if r := tt.a.gql(`mutation { createUser(input: {email: "x@a.example"}, password: "long-enough-pw") { id } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("consultant created a user: %s", r.raw)
	}
	if r := tt.b.gql(`mutation { createUser(input: {email: "evil@b.example", role: platform}, password: "long-enough-pw") { id } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("tenant owner granted platform: %s", r.raw)
	}
	// Every refusal was logged with its trace id.
	if !strings.Contains(tt.ts.Logs.String(), `"msg":"graphql request refused"`) {
		t.Fatalf("refusals are not logged")
	}
}

func TestBadInput(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed json", `{"query": "{ viewer `, 400, "json"},
		{"malformed graphql", `{"query": "{ hosts(first: 1) { edges { node { name "}`, 422, "Expected"},
		{"unknown field", `{"query": "{ hosts(first: 1) { edges { node { password } } } }"}`, 422, "Cannot query field"},
		{"page too big", `{"query": "{ hosts(first: 100000) { totalCount } }"}`, 200, "page size must be between 0 and 1000"},
		{"too deep", `{"query": "{ hosts(first:1){edges{node{application{hosts(first:1){edges{node{application{hosts(first:1){edges{node{application{name}}}}}}}}}}}}}"}`, 200, "nested 13 levels deep"},
		{"nested lists too expensive", `{"query": "{ hosts(first:1000){edges{node{outgoing(first:1000){totalCount}}}} }"}`, 200, `"code":"INVALID","limit":"complexity"`},
		{"invalid field value", `{"query": "mutation { createHost(input: {name: \"\"}) { id } }"}`, 200, "invalid name"},
		{"bad enum", `{"query": "mutation { createHost(input: {name: \"x\", environment: moon}) { id } }"}`, 422, "moon"},
		{"bad enum in a variable", `{"query": "query($e: HostEnvironment!) { hosts(first: 1, where: {environment: $e}) { totalCount } }", "variables": {"e": "PRODUCTION"}}`, 200, `invalid argument hosts.where.environment: PRODUCTION is not a valid Environment","path":["hosts","where","environment"],"extensions":{"code":"INVALID"`},
		{"bad cursor", `{"query": "{ hosts(first: 1, after: \"!!not-a-cursor\") { totalCount } }"}`, 200, `"code":"INVALID"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.post("/graphql", tc.body)
			if status != tc.status || !strings.Contains(string(body), tc.want) {
				t.Fatalf("status %d body %s; want %d containing %q", status, body, tc.status, tc.want)
			}
		})
	}
	t.Run("expensive", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < 50; i++ {
			fmt.Fprintf(&b, "a%d: hosts(first: 1000) { totalCount edges { node { name os cpus } } } ", i)
		}
		b.WriteString("}")
		r := c.gql(b.String(), nil)
		if r.code() != "INVALID" || r.Errors[0].Extensions["limit"] != "complexity" || !strings.Contains(r.raw, "the limit is 250000") {
			t.Fatalf("expensive query accepted: %.300s", r.raw)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		big := `{"query": "{ viewer { role } }", "variables": {"pad": "` + strings.Repeat("x", 2<<20) + `"}}`
		status, body := c.post("/graphql", big)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "larger than") {
			t.Fatalf("oversized: %d %.200s", status, body)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		c.mustGQL(`mutation { createApplication(input: {name: "dup"}) { id } }`, nil)
		r := c.gql(`mutation { createApplication(input: {name: "dup"}) { id } }`, nil)
		if r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "already exists") {
			t.Fatalf("duplicate: %s", r.raw)
		}
	})
	// Nothing above left a half-made row behind.
	if got := dig(c.mustGQL(`{ hosts { totalCount } applications { totalCount } }`, nil), "hosts", "totalCount"); got != float64(0) {
		t.Fatalf("failed mutations left %v hosts", got)
	}
}

func TestSecretsEncryptedAndNeverReturned(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	const secret = "LTAI-very-secret-key-material"
	d := c.mustGQL(`mutation { createCloudAccount(input: {name: "prod", provider: alibaba, region: "cn-hangzhou", accessKeyID: "LTAIid", secret: "`+secret+`"}) { id name accessKeyID } }`, nil)
	if strings.Contains(fmt.Sprint(d), secret) {
		t.Fatalf("secret returned by the mutation")
	}
	r := c.gql(`{ cloudAccounts(first: 5) { edges { node { name provider region } } } }`, nil)
	if strings.Contains(r.raw, secret) {
		t.Fatalf("secret returned by a query")
	}
	if r := c.gql(`{ cloudAccounts(first: 5) { edges { node { secretCiphertext } } } }`, nil); r.code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("ciphertext must not be in the schema: %s", r.raw)
	}
	acct, err := ts.App.DB.Client.CloudAccount.Query().Where(cloudaccount.Name("prod")).Only(viewer.SystemContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(acct.SecretCiphertext), secret) || len(acct.SecretCiphertext) == 0 {
		t.Fatalf("secret stored in clear")
	}
	plain, err := ts.App.Secrets.Open(acct.SecretCiphertext, []byte(fmt.Sprintf("cloud_account:%d:tenant:%d", acct.ID, acct.TenantID)))
	if err != nil || string(plain) != secret {
		t.Fatalf("stored secret does not decrypt back: %v", err)
	}
	// Bound to the row, not just the tenant: the old tenant-only binding no longer opens it.
	if _, err := ts.App.Secrets.Open(acct.SecretCiphertext, []byte(fmt.Sprintf("cloud_account:tenant:%d", acct.TenantID))); err == nil {
		t.Fatalf("the secret opens with the tenant alone as associated data")
	}
	if strings.Contains(ts.Logs.String(), secret) {
		t.Fatalf("secret in the log")
	}
	if r := c.gql(`mutation { createCloudAccount(input: {name: "nokey", provider: alibaba}) { id } }`, nil); r.code() != "INVALID" {
		t.Fatalf("alibaba account without secret: %s", r.raw)
	}
}

func TestAuditEventForEveryMutation(t *testing.T) {
	ts := mustStart(t)
	c := ts.login(t, "admin@example.com", adminPassword)
	req, _ := http.NewRequest("POST", ts.URL+"/graphql", strings.NewReader(`{"query":"mutation { createHost(input: {name: \"audited\"}) { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	req.Header.Set("X-Request-Id", "trace-from-client-1234")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Trace-Id") != "trace-from-client-1234" {
		t.Fatalf("trace id not echoed: %q", resp.Header.Get("X-Trace-Id"))
	}
	d := c.mustGQL(`{ auditEvents(first: 10, orderBy: {field: CREATED_AT, direction: DESC}) { edges { node { actor action objectType traceID } } } }`, nil)
	ev := dig(d, "auditEvents", "edges", 0, "node").(map[string]any)
	if ev["action"] != "createHost" || ev["actor"] != "admin@example.com" || ev["objectType"] != "Host" || ev["traceID"] != "trace-from-client-1234" {
		t.Fatalf("audit event = %v", ev)
	}
	if got := dig(d, "auditEvents", "edges", 1, "node", "action"); got != "signIn" {
		t.Fatalf("sign-in not audited: %v", got)
	}
	// A mutation that fails leaves no audit event and no row.
	c.gql(`mutation { createHost(input: {name: ""}) { id } }`, nil)
	if n := len(dig(c.mustGQL(`{ auditEvents(first: 10) { edges { node { id } } } }`, nil), "auditEvents", "edges").([]any)); n != 2 {
		t.Fatalf("%d audit events, want 2", n)
	}
}

func TestHealthAndUI(t *testing.T) {
	ts := mustStart(t)
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"queue":"ok"`, "/": "Ferry", "/inventory/hosts": "Ferry"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1<<16)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b[:n]), want) {
			t.Fatalf("%s: %d %.200s", path, resp.StatusCode, b[:n])
		}
	}
	ts.App.Queue.Close()
	resp, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz with the queue down: %d", resp.StatusCode)
	}
}
