package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/ent/auditevent"
	"github.com/ferry-migrate/ferry/ent/marketplaceinstance"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/marketplace"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

const (
	isvKey   = "isv-key-for-tests"
	tokenKey = "marketplace-token-key-for-tests"
)

type market struct {
	t     *testing.T
	ts    *testServer
	clock *testClock
	n     int
}

func newMarket(t *testing.T) *market {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	ts := mustStart(t, withClock(clock), func(c *app.Config) {
		c.Marketplace = app.MarketplaceConfig{ISVKey: isvKey, TokenKey: tokenKey}
	})
	return &market{t: t, ts: ts, clock: clock}
}

// spi calls the SPI as the marketplace does: every parameter, then the token.
func (m *market) spi(params map[string]string) (int, map[string]any) {
	m.t.Helper()
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	if _, ok := params["token"]; !ok {
		q.Set("token", marketplace.SPIToken(q, isvKey))
	}
	resp, err := http.Get(m.ts.URL + "/marketplace/spi?" + q.Encode())
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		m.t.Fatalf("SPI answer is not JSON (%d): %s", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// call calls the adapter; token "" means a fresh valid one for uid.
func (m *market) call(action, uid, token, params, traceID string) (int, marketplace.Envelope) {
	m.t.Helper()
	if token == "" {
		token = marketplace.SignAccess(marketplace.AccessClaims{UID: uid, IssuedAt: m.clock.Now().Unix(), ExpiresAt: m.clock.Now().Add(time.Hour).Unix()}, []byte(tokenKey))
	}
	if traceID == "" {
		m.n++
		traceID = fmt.Sprintf("trace-%d-%d", time.Now().UnixNano(), m.n)
	}
	ui, _ := json.Marshal(map[string]string{"aliUid": uid, "name": "Li Lei", "email": "lilei-" + uid + "@example.cn"})
	q := url.Values{"userinfo": {string(ui)}, "accessToken": {token}, "params": {params}, "traceId": {traceID}}
	resp, err := http.Get(m.ts.URL + "/api/" + action + "?" + q.Encode())
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env marketplace.Envelope
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &env); err != nil {
		m.t.Fatalf("adapter answer is not the JSON envelope (%d): %s", resp.StatusCode, b)
	}
	if env.TraceID != traceID {
		m.t.Fatalf("envelope traceId %q, want %q", env.TraceID, traceID)
	}
	return resp.StatusCode, env
}

func TestMarketplaceProvisioning(t *testing.T) {
	m := newMarket(t)
	sys := viewer.SystemContext(t.Context())
	db := m.ts.App.DB.Client
	create := map[string]string{"action": "createInstance", "aliUid": "1234567890", "orderBizId": "biz-0001", "orderId": "ord-1",
		"productCode": "cmsaas001", "skuId": "basic", "trial": "false", "expiredOn": "2027-12-31 23:59:59", "extraParam": "added later"}
	st, out := m.spi(create)
	if st != 200 || out["instanceId"] != "biz-0001" {
		t.Fatalf("createInstance: %d %v", st, out)
	}
	// Called again for the same order: the same instance, nothing new.
	st, again := m.spi(create)
	if st != 200 || again["instanceId"] != "biz-0001" {
		t.Fatalf("repeated createInstance: %d %v", st, again)
	}
	if n := db.MarketplaceInstance.Query().CountX(sys); n != 1 {
		t.Fatalf("%d instances after a repeated createInstance", n)
	}
	in := db.MarketplaceInstance.Query().OnlyX(sys)
	tn := db.Tenant.GetX(sys, in.TenantID)
	if tn.Slug != "ali-biz-0001" || in.ExpiresAt == nil || !in.ExpiresAt.Equal(time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC)) {
		t.Fatalf("instance %+v in tenant %+v", in, tn)
	}
	// A forged token (a parameter changed after signing) is refused.
	forged := map[string]string{}
	for k, v := range create {
		forged[k] = v
	}
	q := url.Values{}
	for k, v := range create {
		q.Set(k, v)
	}
	forged["token"] = marketplace.SPIToken(q, isvKey)
	forged["orderBizId"] = "biz-9999"
	if st, out := m.spi(forged); st != 403 || out["success"] != false {
		t.Fatalf("forged SPI token: %d %v", st, out)
	}
	if st, out := m.spi(map[string]string{"action": "dropDatabase"}); st != 400 || !strings.Contains(fmt.Sprint(out["message"]), "unknown action") {
		t.Fatalf("unknown SPI action: %d %v", st, out)
	}
	if n := db.Tenant.Query().Where(tenant.SlugHasPrefix("ali-")).CountX(sys); n != 1 {
		t.Fatalf("%d marketplace tenants, want 1", n)
	}

	// The user's first adapter call maps them into the instance's tenant as its owner.
	st, env := m.call("whoami", "1234567890", "", "", "")
	if st != 200 || env.Code != marketplace.CodeSuccess || dig(env.Data, "role") != "owner" || dig(env.Data, "tenant", "slug") != "ali-biz-0001" {
		t.Fatalf("whoami: %d %+v", st, env)
	}
	u := db.User.Query().Where(user.ExternalID("alibaba:1234567890")).OnlyX(sys)
	actx := viewer.TenantContext(t.Context(), u.TenantID)
	cred := "agent-of-the-marketplace-tenant"
	db.Agent.Create().SetName("a").SetCredentialHash([]byte(agentapi.HashCredential(cred))).SaveX(actx)

	// Expired: suspended, nothing deleted; calls and agents refused with the reason.
	if st, out := m.spi(map[string]string{"action": "expiredInstance", "instanceId": "biz-0001"}); st != 200 || out["success"] != true {
		t.Fatalf("expiredInstance: %d %v", st, out)
	}
	st, env = m.call("listHosts", "1234567890", "", `{"first": 10}`, "")
	if st != 403 || env.Code != marketplace.CodeTenantSuspended || !strings.Contains(env.Message, "the marketplace subscription expired") {
		t.Fatalf("a suspended tenant's call: %d %+v", st, env)
	}
	if st, body := heartbeat(t, m.ts, cred); st != 403 || !strings.Contains(body, "tenant_suspended") || !strings.Contains(body, "subscription expired") {
		t.Fatalf("a suspended tenant's agent: %d %s", st, body)
	}
	if db.Tenant.GetX(sys, u.TenantID).SuspendedAt == nil || db.User.Query().Where(user.TenantID(u.TenantID)).CountX(sys) != 1 {
		t.Fatalf("expiredInstance did not suspend, or deleted something")
	}
	// Renewed: resumed.
	if st, out := m.spi(map[string]string{"action": "renewInstance", "instanceId": "biz-0001", "orderId": "ord-2", "expiredOn": "2028-12-31 23:59:59"}); st != 200 || out["success"] != true {
		t.Fatalf("renewInstance: %d %v", st, out)
	}
	if st, env := m.call("listHosts", "1234567890", "", `{"first": 10}`, ""); st != 200 || env.Code != marketplace.CodeSuccess {
		t.Fatalf("after renewing: %d %+v", st, env)
	}
	if st, out := m.spi(map[string]string{"action": "upgradeInstance", "instanceId": "biz-0001", "skuId": "pro"}); st != 200 || out["success"] != true {
		t.Fatalf("upgradeInstance: %d %v", st, out)
	}
	if db.MarketplaceInstance.Query().OnlyX(sys).SkuID != "pro" {
		t.Fatal("upgradeInstance did not record the new SKU")
	}

	// Single sign-on: a fresh verify link signs the browser in.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	sso := url.Values{"action": {"verify"}, "instanceId": {"biz-0001"}, "aliUid": {"1234567890"}, "timestamp": {strconv.FormatInt(m.clock.Now().UnixMilli(), 10)}}
	sso.Set("token", marketplace.SPIToken(sso, isvKey))
	resp, err := browser.Get(m.ts.URL + "/marketplace/spi?" + sso.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("verify: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := &client{t: t, base: m.ts.URL, http: &http.Client{Jar: jar}}
	for _, ck := range jar.Cookies(mustURL(m.ts.URL)) {
		if ck.Name == "ferry_csrf" {
			c.csrf = ck.Value
		}
	}
	if d := c.mustGQL(`{ viewer { user { email } } }`, nil); dig(d, "viewer", "user", "email") != u.Email {
		t.Fatalf("the SSO session is not the marketplace user's: %v", d)
	}
	m.clock.Add(10 * time.Minute)
	if resp, _ := browser.Get(m.ts.URL + "/marketplace/spi?" + sso.Encode()); resp.StatusCode != 403 {
		t.Fatalf("a stale verify link: %d", resp.StatusCode)
	}

	// Released: still suspended, deletion scheduled, nothing deleted.
	if st, out := m.spi(map[string]string{"action": "releaseInstance", "instanceId": "biz-0001"}); st != 200 || out["success"] != true {
		t.Fatalf("releaseInstance: %d %v", st, out)
	}
	tn = db.Tenant.GetX(sys, u.TenantID)
	if tn.SuspendedAt == nil || tn.DeletionScheduledAt == nil || tn.DeletionScheduledAt.Sub(m.clock.Now()) < 29*24*time.Hour {
		t.Fatalf("released tenant: %+v", tn)
	}
	if db.MarketplaceInstance.Query().OnlyX(sys).Status != marketplaceinstance.StatusReleased {
		t.Fatal("instance not marked released")
	}
	var actions []string
	for _, e := range db.AuditEvent.Query().Where(auditevent.TenantID(u.TenantID), auditevent.ActionHasPrefix("marketplace:")).Order(auditevent.BySeq()).AllX(sys) {
		actions = append(actions, e.Action)
	}
	want := "marketplace:createInstance marketplace:whoami marketplace:expiredInstance marketplace:renewInstance marketplace:listHosts marketplace:upgradeInstance marketplace:verify marketplace:releaseInstance"
	if strings.Join(actions, " ") != want {
		t.Fatalf("audit of marketplace calls:\n got %s\nwant %s", strings.Join(actions, " "), want)
	}
}

func mustURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}

func TestMarketplaceAdapterRefusals(t *testing.T) {
	m := newMarket(t)
	sys := viewer.SystemContext(t.Context())
	// No instance yet: the first call gives the account a tenant of its own.
	st, env := m.call("whoami", "555", "", "", "")
	if st != 200 || env.Code != marketplace.CodeSuccess || dig(env.Data, "role") != "owner" {
		t.Fatalf("first call: %d %+v", st, env)
	}
	// A mutation through the adapter is the GraphQL mutation: its audit
	// event carries the marketplace's trace id.
	st, env = m.call("createHost", "555", "", `{"input": {"name": "erp-db-01", "os": "linux"}}`, "trace-create-host-1")
	if st != 200 || env.Code != marketplace.CodeSuccess || dig(env.Data, "name") != "erp-db-01" {
		t.Fatalf("createHost: %d %+v", st, env)
	}
	ev := m.ts.App.DB.Client.AuditEvent.Query().Where(auditevent.Action("createHost")).OnlyX(sys)
	if ev.TraceID != "trace-create-host-1" || ev.Actor != "lilei-555@example.cn" {
		t.Fatalf("createHost's audit event: %+v", ev)
	}
	if st, env := m.call("listHosts", "555", "", `{"first": 5}`, ""); st != 200 || dig(env.Data, "totalCount") != float64(1) {
		t.Fatalf("listHosts: %d %+v", st, env)
	}
	for _, tc := range []struct {
		name, action, uid, token, params, trace string
		status                                  int
		code                                    string
	}{
		{name: "forged token", action: "whoami", uid: "555", status: 401, code: marketplace.CodeInvalidToken,
			token: marketplace.SignAccess(marketplace.AccessClaims{UID: "555", ExpiresAt: time.Now().Add(time.Hour).Unix()}, []byte("not-the-key"))},
		{name: "expired token", action: "whoami", uid: "555", status: 401, code: marketplace.CodeTokenExpired,
			token: marketplace.SignAccess(marketplace.AccessClaims{UID: "555", ExpiresAt: m.clock.Now().Add(-time.Minute).Unix()}, []byte(tokenKey))},
		{name: "token of another user", action: "whoami", uid: "555", status: 401, code: marketplace.CodeInvalidToken,
			token: marketplace.SignAccess(marketplace.AccessClaims{UID: "666", ExpiresAt: m.clock.Now().Add(time.Hour).Unix()}, []byte(tokenKey))},
		{name: "garbage token", action: "whoami", uid: "555", token: "garbage", status: 401, code: marketplace.CodeInvalidToken},
		{name: "unknown action", action: "dropTenant", uid: "555", status: 404, code: marketplace.CodeUnknownAction},
		{name: "params not JSON", action: "listHosts", uid: "555", params: "first=10", status: 400, code: marketplace.CodeInvalidParameter},
		{name: "params of the wrong type", action: "listHosts", uid: "555", params: `{"first": "ten"}`, status: 400, code: marketplace.CodeInvalidParameter},
		{name: "a host id that names nothing", action: "startMigration", uid: "555", params: `{"hostIds": ["1"]}`, status: 404, code: marketplace.CodeNotFound},
	} {
		st, env := m.call(tc.action, tc.uid, tc.token, tc.params, tc.trace)
		if st != tc.status || env.Code != tc.code || env.Message == "" {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, st, env, tc.status, tc.code)
		}
	}
	// A trace id is good for one call.
	if st, env := m.call("whoami", "555", "", "", "trace-replayed-0001"); st != 200 {
		t.Fatalf("first use of a trace id: %d %+v", st, env)
	}
	if st, env := m.call("whoami", "555", "", "", "trace-replayed-0001"); st != 409 || env.Code != marketplace.CodeReplayedTraceID {
		t.Fatalf("replayed trace id: %d %+v", st, env)
	}
	// The UI's HTML is no answer to /api/...: an unknown action is JSON.
	resp, err := http.Get(m.ts.URL + "/api/list?traceId=trace-html-check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("/api/list answered %s", ct)
	}
}
