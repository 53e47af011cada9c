package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// registeredGateway registers a gateway of migration mid in the cloud
// account acct the way `ferry gateway --register` does (the record the
// driver writes, a ticket, POST …/register) and returns its answer.
func registeredGateway(t *testing.T, ts *testServer, acct, mid string) alibaba.Registered {
	t.Helper()
	p := ts.App.Alibaba
	ctx := context.Background()
	st, err := p.Stores(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	gw, _ := json.Marshal(map[string]any{"migration_id": mid, "nonce": "n1", "disks": map[string]string{}})
	if err := st.Put(ctx, "gateway/"+mid, gw); err != nil {
		t.Fatal(err)
	}
	ticket, err := p.Tickets.Mint(ctx, acct, "gateway/"+mid+"/n1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	status, body := postJSON(t, ts.URL+"/cloud/v1/alibaba/register", alibaba.Registration{Token: ticket, Fingerprint: "ab12", CredentialKey: key, Port: 8443})
	if status != 200 {
		t.Fatalf("registration: %d %s", status, body)
	}
	var got alibaba.Registered
	if err := json.Unmarshal(body, &got); err != nil || got.Bearer == "" {
		t.Fatalf("registration answer %s: %v", body, err)
	}
	return got
}

func feedGet(t *testing.T, url, bearer string) (int, engine.RevocationPage, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p engine.RevocationPage
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("feed answer %s: %v", b, err)
		}
	}
	return resp.StatusCode, p, string(b)
}

// TestRevocationFeed: a registered gateway long-polls its tenant's
// revocations with its bearer; an agent revoked through GraphQL reaches a
// waiting poll at once; another tenant's gateway never sees it; a bad
// bearer is 401, a malformed cursor a 400 naming it; the cursor pages; a
// disabled tenant is said; the gateway's teardown revokes its bearer.
func TestRevocationFeed(t *testing.T) {
	ts := mustStart(t, func(c *app.Config) { c.PublicURL = "https://ferry.example.com" })
	admin := ts.login(t, "admin@example.com", adminPassword)
	create := func(c *client, name string) string {
		return dig(c.mustGQL(`mutation($n: String!) { createCloudAccount(input: {name: $n, provider: alibaba, region: "cn-hangzhou", accessKeyID: "LTAIx", secret: "y"}) { id } }`,
			map[string]any{"n": name}), "createCloudAccount", "id").(string)
	}
	acctA := create(admin, "a")
	admin.mustGQL(`mutation { createTenant(input: {name: "Other", slug: "other"}, ownerEmail: "o@other.example", ownerPassword: "other-password-1") { tenant { id } } }`, nil)
	acctB := create(ts.login(t, "o@other.example", "other-password-1"), "b")
	regA := registeredGateway(t, ts, acctA, "m1")
	regB := registeredGateway(t, ts, acctB, "m2")
	if regA.Revocations != "https://ferry.example.com"+engine.RevocationsPath {
		t.Fatalf("the registration named the feed %q", regA.Revocations)
	}
	feed := ts.URL + engine.RevocationsPath

	sys := viewer.SystemContext(context.Background())
	cl := ts.App.DB.Client
	tenants := cl.Tenant.Query().Order().IDsX(sys)
	agA := cl.Agent.Create().SetTenantID(tenants[0]).SetCredentialHash([]byte("hash-a")).SaveX(sys)
	agB := cl.Agent.Create().SetTenantID(tenants[1]).SetCredentialHash([]byte("hash-b")).SaveX(sys)

	// Nothing revoked yet: a heartbeat.
	status, p, body := feedGet(t, feed+"?wait=0", regA.Bearer)
	if status != 200 || len(p.Events) != 0 || p.More || p.TenantDisabled {
		t.Fatalf("first poll: %d %s", status, body)
	}
	for _, c := range []struct{ name, bearer string }{
		{"anonymous", ""}, {"garbage", "x.y.z"}, {"another gateway's secret", strings.Join(strings.Split(regA.Bearer, ".")[:2], ".") + ".AAAA"},
		{"a session's bearer", "frc_abc"},
	} {
		if status, _, body := feedGet(t, feed, c.bearer); status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", c.name, status, body)
		}
	}
	for _, q := range []string{"after=-1", "after=abc", "after=1e5", "after=99999999999999999999", "after=%2B5", "after=1&after=2", "cursor=5", "wait=10s", "wait=-1s"} {
		status, _, body := feedGet(t, feed+"?"+q, regA.Bearer)
		if status != http.StatusBadRequest || !strings.Contains(body, strings.SplitN(q, "=", 2)[0]) && !strings.Contains(body, "once") {
			t.Errorf("?%s: %d %s, want 400 naming the parameter", q, status, body)
		}
	}

	// A poll waiting when the agent is revoked returns with it.
	type answer struct {
		status int
		p      engine.RevocationPage
	}
	got := make(chan answer, 1)
	go func() {
		s, p, _ := feedGet(t, feed+"?after="+p.Cursor, regA.Bearer)
		got <- answer{s, p}
	}()
	time.Sleep(300 * time.Millisecond) // let the poll start waiting
	gid := func(c *client) string {
		d := c.mustGQL(`{ agents(first: 5) { edges { node { id } } } }`, nil)
		return dig(d, "agents", "edges", 0, "node", "id").(string)
	}
	admin.mustGQL(`mutation($id: ID!) { revokeAgent(id: $id) { id } }`, map[string]any{"id": gid(admin)})
	a := <-got
	if a.status != 200 || len(a.p.Events) != 1 || a.p.Events[0].Subject != engine.AgentSubject(agA.ID) || a.p.Cursor == "" {
		t.Fatalf("the waiting poll answered %d %+v; want agent %d's revocation", a.status, a.p, agA.ID)
	}
	// The other tenant's gateway does not learn it.
	if status, p, body := feedGet(t, feed+"?wait=0", regB.Bearer); status != 200 || len(p.Events) != 0 {
		t.Fatalf("tenant B's gateway read %d %s", status, body)
	}
	// B's own revocation reaches B only.
	cl.Agent.UpdateOneID(agB.ID).SetRevokedAt(time.Now()).ExecX(sys)
	if _, p, _ := feedGet(t, feed+"?wait=0", regB.Bearer); len(p.Events) != 1 || p.Events[0].Subject != engine.AgentSubject(agB.ID) {
		t.Fatalf("tenant B's feed: %+v", p)
	}
	if _, p, _ := feedGet(t, feed+"?wait=0&after="+a.p.Cursor, regA.Bearer); len(p.Events) > 1 {
		t.Fatalf("tenant A's feed after its cursor: %+v (B's revocation leaked?)", p)
	}

	// Paging: a bulk revocation of more than a page.
	n := engine.RevocationPageLimit + 20
	bulk := make([]int, 0, n)
	for i := range n {
		bulk = append(bulk, cl.Agent.Create().SetTenantID(tenants[0]).SetCredentialHash([]byte("bulk-"+strconv.Itoa(i))).SaveX(sys).ID)
	}
	cl.Agent.Update().Where(agent.IDIn(bulk...)).SetRevokedAt(time.Now()).ExecX(sys)
	seen := map[string]bool{}
	cursor, pages := a.p.Cursor, 0
	for {
		status, p, body := feedGet(t, feed+"?wait=0&after="+cursor, regA.Bearer)
		if status != 200 || len(p.Events) > engine.RevocationPageLimit+100 {
			t.Fatalf("page %d: %d, %d events: %.300s", pages, status, len(p.Events), body)
		}
		for _, e := range p.Events {
			seen[e.Subject] = true
		}
		cursor = p.Cursor
		pages++
		if !p.More {
			break
		}
	}
	for _, id := range bulk {
		if !seen[engine.AgentSubject(id)] {
			t.Fatalf("agent %d's revocation is on no page (%d pages, %d subjects)", id, pages, len(seen))
		}
	}
	if pages < 2 || seen[engine.AgentSubject(agB.ID)] {
		t.Fatalf("%d pages; B's agent listed: %v", pages, seen[engine.AgentSubject(agB.ID)])
	}

	// Deleting an agent revokes it too.
	gone := cl.Agent.Create().SetTenantID(tenants[0]).SetCredentialHash([]byte("gone")).SaveX(sys)
	cl.Agent.DeleteOneID(gone.ID).ExecX(sys)
	if _, p, body := feedGet(t, feed+"?wait=0&after="+cursor, regA.Bearer); len(p.Events) == 0 || p.Events[len(p.Events)-1].Subject != engine.AgentSubject(gone.ID) {
		t.Fatalf("after deleting agent %d the feed says %s", gone.ID, body)
	}

	// A disabled tenant is said in every answer.
	cl.Tenant.UpdateOneID(tenants[1]).SetDisabled(true).ExecX(sys)
	if _, p, body := feedGet(t, feed+"?wait=0", regB.Bearer); !p.TenantDisabled {
		t.Fatalf("the disabled tenant's gateway was not told: %s", body)
	}
	// Tearing the gateway down (its record and registration go) revokes its
	// credential.
	st, _ := ts.App.Alibaba.Stores(context.Background(), acctA)
	st.Delete(context.Background(), "registration/m1/n1")
	if status, _, body := feedGet(t, feed+"?wait=0", regA.Bearer); status != http.StatusUnauthorized {
		t.Fatalf("a torn-down gateway's bearer: %d %s", status, body)
	}
}
