package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// wsClient speaks graphql-transport-ws (the graphql-ws npm client's protocol)
// over a real websocket.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan wsMsg
}

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

const progressSub = `subscription($ids: [ID!]) { migrationProgress(ids: $ids) { id state bytesDone bytesTotal rate eta lagSeconds percent host { name } } }`

// dialWS opens /graphql as a websocket with c's cookies (or API token) and
// the given Origin ("" for none). It returns the HTTP status of a refused
// handshake.
func dialWS(t *testing.T, c *client, origin string) (*wsClient, int, error) {
	t.Helper()
	u, _ := url.Parse(c.base + "/graphql")
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	var cookies []string
	for _, ck := range c.http.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+"/graphql", &websocket.DialOptions{
		HTTPHeader: h, Subprotocols: []string{"graphql-transport-ws"},
	})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	w := &wsClient{t: t, conn: conn, msgs: make(chan wsMsg, 100)}
	t.Cleanup(func() { conn.CloseNow() })
	go func() {
		defer close(w.msgs)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var m wsMsg
			if json.Unmarshal(b, &m) != nil {
				continue
			}
			if m.Type == "ping" {
				w.send(wsMsg{Type: "pong"})
				continue
			}
			w.msgs <- m
		}
	}()
	w.send(wsMsg{Type: "connection_init", Payload: json.RawMessage(`{}`)})
	if m := w.next(); m.Type != "connection_ack" {
		t.Fatalf("expected connection_ack, got %+v", m)
	}
	return w, 0, nil
}

func (w *wsClient) send(m wsMsg) {
	b, _ := json.Marshal(m)
	w.conn.Write(context.Background(), websocket.MessageText, b)
}

func (w *wsClient) subscribe(id, query string, vars map[string]any) {
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	w.send(wsMsg{ID: id, Type: "subscribe", Payload: p})
}

// next returns the next message other than pong, failing after 15 s.
func (w *wsClient) next() wsMsg {
	w.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-w.msgs:
			if !ok {
				w.t.Fatalf("websocket closed")
			}
			if m.Type == "pong" {
				continue
			}
			return m
		case <-deadline:
			w.t.Fatalf("no websocket message within 15 s")
		}
	}
}

type progressEvent struct {
	sub        string
	ID         string
	State      string
	BytesDone  int64
	BytesTotal int64
	Rate       int64
}

// event returns the next "next" message as a progress event; errors fail.
func (w *wsClient) event() progressEvent {
	w.t.Helper()
	m := w.next()
	if m.Type != "next" {
		w.t.Fatalf("expected next, got %s %s", m.Type, m.Payload)
	}
	var p struct {
		Data struct {
			MigrationProgress struct {
				ID         string `json:"id"`
				State      string `json:"state"`
				BytesDone  int64  `json:"bytesDone"`
				BytesTotal int64  `json:"bytesTotal"`
				Rate       int64  `json:"rate"`
			} `json:"migrationProgress"`
		} `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	json.Unmarshal(m.Payload, &p)
	if len(p.Errors) > 0 {
		w.t.Fatalf("subscription %s error: %s", m.ID, m.Payload)
	}
	mp := p.Data.MigrationProgress
	return progressEvent{sub: m.ID, ID: mp.ID, State: mp.State, BytesDone: mp.BytesDone, BytesTotal: mp.BytesTotal, Rate: mp.Rate}
}

// awaitLive returns once subscription sub of w has taken its starting picture.
// A subscription to all migrations sends nothing at first and reports only
// changes after its first poll, which the server runs at its own pace after
// the subscribe message; until then a write can land in that picture unseen.
// So write (with i = 1, 2, …) until sub reports a change, with a deadline.
func awaitLive(t *testing.T, w *wsClient, sub string, write func(i int)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 1; time.Now().Before(deadline); i++ {
		write(i)
		wait := time.After(1500 * time.Millisecond)
	drain:
		for {
			select {
			case m, ok := <-w.msgs:
				if !ok {
					t.Fatalf("websocket closed")
				}
				if m.ID == sub && m.Type == "next" {
					return
				}
			case <-wait:
				break drain
			}
		}
	}
	t.Fatalf("subscription %s reported no change within 15 s", sub)
}

// newMigration creates a host and its migration in the tenant through ent.
func newMigration(t *testing.T, ts *testServer, tenantID int, name string) *ent.Migration {
	t.Helper()
	ctx := viewer.TenantContext(t.Context(), tenantID)
	c := ts.App.DB.Client
	h := c.Host.Create().SetName(name).SaveX(ctx)
	return c.Migration.Create().SetHostID(h.ID).SetBytesTotal(1 << 30).SaveX(ctx)
}

func tenantID(t *testing.T, ts *testServer, slug string) int {
	t.Helper()
	id, err := ts.App.DB.Client.Tenant.Query().Where(tenant.Slug(slug)).OnlyID(viewer.SystemContext(t.Context()))
	if err != nil {
		t.Fatalf("tenant %s: %v", slug, err)
	}
	return id
}

func TestSubscriptionMigrationProgress(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createTenant(input: {name: "Bank B", slug: "bank-b"}, ownerEmail: "bob@b.example", ownerPassword: "bob-password-12") { tenant { id } } }`, nil)
	bob := ts.login(t, "bob@b.example", "bob-password-12")
	tenantA := ts.App.DB.Client.User.Query().Where(user.Email("admin@example.com")).OnlyX(viewer.SystemContext(t.Context())).TenantID
	tenantB := tenantID(t, ts, "bank-b")
	ma := newMigration(t, ts, tenantA, "a-web-01")
	mb := newMigration(t, ts, tenantB, "b-db-01")
	idA, idB := strconv.Itoa(ma.ID), strconv.Itoa(mb.ID)

	// Same-origin upgrade with the session cookie, as the browser does.
	wa, _, err := dialWS(t, admin, admin.base)
	if err != nil {
		t.Fatalf("same-origin websocket refused: %v", err)
	}
	wa.subscribe("ids", progressSub, map[string]any{"ids": []string{idA}})
	if e := wa.event(); e.ID != idA || e.BytesDone != 0 || e.State != "pending" {
		t.Fatalf("first event is the current row, got %+v", e)
	}
	wa.subscribe("all", progressSub, nil)
	awaitLive(t, wa, "all", func(i int) {
		ts.App.DB.Client.Migration.UpdateOneID(ma.ID).SetLagSeconds(int64(i)).ExecX(viewer.TenantContext(t.Context(), tenantA))
	})

	// Tenant B asks for A's migration by id (and its own), and for "all".
	wb, _, err := dialWS(t, bob, bob.base)
	if err != nil {
		t.Fatalf("bob's websocket: %v", err)
	}
	wb.subscribe("ids", progressSub, map[string]any{"ids": []string{idA, idB}})
	if e := wb.event(); e.ID != idB {
		t.Fatalf("tenant B's snapshot must hold only its own migration, got %+v", e)
	}
	wb.subscribe("all", progressSub, nil)
	awaitLive(t, wb, "all", func(i int) {
		ts.App.DB.Client.Migration.UpdateOneID(mb.ID).SetLagSeconds(int64(i)).ExecX(viewer.TenantContext(t.Context(), tenantB))
	})

	// The sync follower's kind of write: bytes, rate, state, through ent.
	ctxA := viewer.TenantContext(t.Context(), tenantA)
	ts.App.DB.Client.Migration.UpdateOneID(ma.ID).SetBytesDone(123456789).SetRateBps(4096).SetState("initial_sync").ExecX(ctxA)
	seen := map[string]bool{}
	for len(seen) < 2 {
		e := wa.event()
		if e.ID == idB && e.sub == "all" {
			continue // the platform operator follows every tenant: B's liveness probe
		}
		if e.ID != idA {
			t.Fatalf("unexpected event %+v", e)
		}
		if e.BytesDone == 123456789 {
			if e.Rate != 4096 || e.State != "initial_sync" || e.BytesTotal != 1<<30 {
				t.Fatalf("event does not carry the new numbers: %+v", e)
			}
			seen[e.sub] = true
		}
	}

	// B's row changes after A's: whatever B's subscriptions saw before
	// B's change would include a leak of A's.
	ctxB := viewer.TenantContext(t.Context(), tenantB)
	ts.App.DB.Client.Migration.UpdateOneID(mb.ID).SetBytesDone(42).ExecX(ctxB)
	got := map[string]bool{}
	for len(got) < 2 {
		e := wb.event()
		if e.ID == idA {
			t.Fatalf("tenant B received tenant A's migration: %+v", e)
		}
		if e.ID == idB && e.BytesDone == 42 {
			got[e.sub] = true
		}
	}

	// An API token works without cookies and without an Origin (a script).
	d := admin.mustGQL(`mutation { createAPIToken(name: "ws") { secret } }`, nil)
	script := ts.anon(t)
	script.token = dig(d, "createAPIToken", "secret").(string)
	wt, _, err := dialWS(t, script, "")
	if err != nil {
		t.Fatalf("API token websocket: %v", err)
	}
	wt.subscribe("1", progressSub, map[string]any{"ids": []string{idA}})
	if e := wt.event(); e.ID != idA || e.BytesDone != 123456789 {
		t.Fatalf("API token subscription: %+v", e)
	}

	// Limits apply to subscriptions as to queries.
	many := make([]string, 1001)
	for i := range many {
		many[i] = strconv.Itoa(i + 1)
	}
	wt.subscribe("2", progressSub, map[string]any{"ids": many})
	if m := wt.next(); m.ID != "2" || !strings.Contains(string(m.Payload), "at most 1000") || !strings.Contains(string(m.Payload), "INVALID") {
		t.Fatalf("1,001 ids must be refused clearly, got %s %s", m.Type, m.Payload)
	}
	deep := "id"
	for range 7 {
		deep = "host { migrations { " + deep + " } }"
	}
	deep = "subscription { migrationProgress { " + deep + " } }"
	wt.subscribe("3", deep, nil)
	m := wt.next()
	for m.ID == "2" && m.Type == "complete" {
		m = wt.next()
	}
	if m.ID != "3" || !strings.Contains(string(m.Payload), "levels deep") {
		t.Fatalf("deep subscription must be refused, got %s %s", m.Type, m.Payload)
	}
}

func TestSubscriptionRefused(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)

	// Cross-site websocket hijacking: the cookie rides along, the Origin gives it away.
	for _, origin := range []string{"http://evil.example", "null", strings.Replace(admin.base, "127.0.0.1", "localhost", 1)} {
		if _, status, err := dialWS(t, admin, origin); err == nil || status != http.StatusForbidden {
			t.Errorf("origin %s: want 403, got status %d, err %v", origin, status, err)
		}
	}
	// No credential: the upgrade is refused before any subscription runs.
	if _, status, err := dialWS(t, ts.anon(t), admin.base); err == nil || status != http.StatusUnauthorized {
		t.Errorf("anonymous: want 401, got status %d, err %v", status, err)
	}
	// A session that ended (signed out) is refused the same way.
	gone := ts.login(t, "admin@example.com", adminPassword)
	u, _ := url.Parse(gone.base)
	cookies := gone.http.Jar.Cookies(u)
	gone.post("/auth/logout", "")
	stale := ts.anon(t)
	stale.http.Jar.SetCookies(u, cookies)
	if _, status, err := dialWS(t, stale, admin.base); err == nil || status != http.StatusUnauthorized {
		t.Errorf("signed out: want 401, got status %d, err %v", status, err)
	}
	if !strings.Contains(ts.Logs.String(), "cross-site websocket refused") {
		t.Errorf("refused upgrades are logged")
	}
}

// closes waits (15 s at most) for the server to close the websocket.
func (w *wsClient) closes() {
	w.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case _, ok := <-w.msgs:
			if !ok {
				return
			}
		case <-deadline:
			w.t.Fatalf("the server did not close the websocket within 15 s")
		}
	}
}

func TestSubscriptionEndsWithTheSignIn(t *testing.T) {
	ts := mustStart(t, func(c *app.Config) { c.SocketRecheck = 50 * time.Millisecond })
	admin := ts.login(t, "admin@example.com", adminPassword)
	d := admin.mustGQL(`mutation { createAPIToken(name: "ws") { secret } }`, nil)
	script := ts.anon(t)
	script.token = dig(d, "createAPIToken", "secret").(string)

	ws, _, err := dialWS(t, admin, admin.base)
	if err != nil {
		t.Fatal(err)
	}
	ws.subscribe("all", progressSub, nil)
	wt, _, err := dialWS(t, script, "")
	if err != nil {
		t.Fatal(err)
	}
	wt.subscribe("all", progressSub, nil)

	// Signing out ends the subscriptions the session opened.
	if status, body := admin.post("/auth/logout", ""); status != 200 {
		t.Fatalf("logout: %d %s", status, body)
	}
	ws.closes()
	// The API token's socket is still served: a new migration's change reaches it.
	tid := ts.App.DB.Client.User.Query().Where(user.Email("admin@example.com")).OnlyX(viewer.SystemContext(t.Context())).TenantID
	m := newMigration(t, ts, tid, "web-02")
	ts.App.DB.Client.Migration.UpdateOneID(m.ID).SetBytesDone(7).ExecX(viewer.TenantContext(t.Context(), tid))
	for e := wt.event(); e.ID != strconv.Itoa(m.ID) || e.BytesDone != 7; e = wt.event() {
	}
	// Server shutdown ends every socket (http.Server.Shutdown does not).
	ts.App.Web.CloseSockets()
	wt.closes()
}
