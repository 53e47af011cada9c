package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/ent/auditevent"
	"github.com/ferry-migrate/ferry/ent/session"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/auth"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// testClock is an injected clock the throttle's delays run on.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(clk *testClock) func(*app.Config) {
	return func(c *app.Config) { c.Now = clk.Now }
}

// behindProxy makes the test's own loopback address a trusted proxy, so a
// test can speak for any client address through X-Forwarded-For.
func behindProxy(c *app.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// signIn posts a sign-in with extra headers and returns the status, body
// and Retry-After.
func (c *client) signIn(email, password string, headers ...string) (int, string, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/auth/login", strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("sign-in: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
}

func from(ip string) []string { return []string{"X-Forwarded-For", ip} }

const admin = "admin@example.com"

func sessionIPs(t *testing.T, ts *testServer) []string {
	t.Helper()
	sys := viewer.SystemContext(context.Background())
	var out []string
	for _, s := range ts.App.DB.Client.Session.Query().Order(session.ByID()).AllX(sys) {
		out = append(out, s.IP)
	}
	return out
}

func TestSpoofedForwardedForIsIgnored(t *testing.T) {
	ts := mustStart(t) // no trusted proxies: the default
	c := ts.anon(t)
	// Five failures, each claiming another address: all count against the
	// real peer, so the sixth attempt waits.
	for i := 0; i < 5; i++ {
		if status, body, _ := c.signIn(admin, "wrong-password", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1), "X-Real-IP", "203.0.113.99",
			"Forwarded", "for=203.0.113.98"); status != 401 {
			t.Fatalf("attempt %d: %d %s", i+1, status, body)
		}
	}
	if status, body, _ := c.signIn(admin, "wrong-password", from("198.51.100.1")...); status != http.StatusTooManyRequests {
		t.Fatalf("6th failure from a 'new' spoofed address: %d %s, want 429 (the spoofed header must not buy fresh attempts)", status, body)
	}
	logs := ts.Logs.String()
	if strings.Contains(logs, "203.0.113.") || strings.Contains(logs, "198.51.100.1") {
		t.Fatal("a spoofed address reached the log")
	}
	if !strings.Contains(logs, `"ip":"127.0.0.1"`) {
		t.Fatal("the log does not name the real peer")
	}
	// And a session records the peer, not what the client claims.
	clk := &testClock{t: time.Now()}
	ts2 := mustStart(t, withClock(clk))
	if status, body, _ := ts2.anon(t).signIn(admin, adminPassword, from("203.0.113.5")...); status != 200 {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	if got := sessionIPs(t, ts2); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Fatalf("session IPs %v, want [127.0.0.1]", got)
	}
	sys := viewer.SystemContext(context.Background())
	ev := ts2.App.DB.Client.AuditEvent.Query().Where(auditevent.Action("signIn")).OnlyX(sys)
	if ev.Details["ip"] != "127.0.0.1" {
		t.Fatalf("audit event ip %v, want 127.0.0.1", ev.Details["ip"])
	}
}

func TestForwardedForHonouredFromATrustedProxy(t *testing.T) {
	ts := mustStart(t, behindProxy)
	c := ts.anon(t)
	// Proxies append: the client wrote the first hop, the proxy the last;
	// the rightmost untrusted hop is the client.
	if status, body, _ := c.signIn(admin, adminPassword, "X-Forwarded-For", "10.9.9.9, 198.51.100.23"); status != 200 {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	if got := sessionIPs(t, ts); len(got) != 1 || got[0] != "198.51.100.23" {
		t.Fatalf("session IPs %v, want [198.51.100.23]", got)
	}
	// Failures from one client do not throttle another behind the same proxy.
	for i := 0; i < 5; i++ {
		c.signIn(admin, "wrong-password", from("203.0.113.66")...)
	}
	if status, _, _ := c.signIn(admin, "wrong-password", from("203.0.113.66")...); status != http.StatusTooManyRequests {
		t.Fatalf("6th failure from 203.0.113.66: %d, want 429", status)
	}
	if status, body, _ := ts.anon(t).signIn(admin, adminPassword, from("198.51.100.24")...); status != 200 {
		t.Fatalf("another client behind the proxy: %d %s", status, body)
	}
	if !strings.Contains(ts.Logs.String(), `"ip":"203.0.113.66"`) {
		t.Fatal("the log does not name the client the proxy forwarded")
	}
}

func TestSignInConcurrentAttemptsCountedExactly(t *testing.T) {
	ts := mustStart(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, _ := ts.anon(t).signIn(admin, "wrong-password")
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[401] != 5 || statuses[429] != 45 || len(statuses) != 2 {
		t.Fatalf("50 concurrent wrong attempts answered %v; want exactly 5 checked (401) and 45 refused (429)", statuses)
	}
	c, err := ts.App.Throttle.Failures(context.Background(), auth.Attempt{Account: admin, IP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if c != (auth.Counts{Pair: 5, IP: 5, Account: 5}) {
		t.Fatalf("stored failures %+v, want 5 in each gate", c)
	}
	if n := strings.Count(ts.Logs.String(), `"msg":"sign-in failed"`); n != 5 {
		t.Fatalf("%d failed sign-ins logged, want 5", n)
	}
}

func TestRightPasswordAfterTheDelayWorks(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	ts := mustStart(t, withClock(clk))
	c := ts.anon(t)
	for i := 0; i < 7; i++ {
		if status, _, wait := c.signIn(admin, "wrong-password"); status == http.StatusTooManyRequests {
			clk.Add(time.Duration(atoi(t, wait)) * time.Second)
			i--
		}
	}
	// Seven failures: the next attempt waits 4 s, even with the right password.
	status, body, wait := c.signIn(admin, adminPassword)
	if status != http.StatusTooManyRequests || wait != "4" || !strings.Contains(body, "try again in 4 seconds") {
		t.Fatalf("right password during the delay: %d %s (Retry-After %q), want 429 for 4 s", status, body, wait)
	}
	clk.Add(4 * time.Second)
	if status, body, _ := c.signIn(admin, adminPassword); status != 200 {
		t.Fatalf("right password after the delay: %d %s", status, body)
	}
	// Success clears the pair: the next typo costs nothing.
	if status, _, _ := c.signIn(admin, "wrong-password"); status != 401 {
		t.Fatalf("a typo after a successful sign-in: %d, want 401", status)
	}
}

// TestAttackerCannotLockOutAnotherUser floods the operator's account from
// an attacker's address and then from 300 addresses; the owner still signs
// in from home (a known IP) and from their browser elsewhere (device
// cookie), and an unknown client waits no longer than the policy's cap.
func TestAttackerCannotLockOutAnotherUser(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	ts := mustStart(t, withClock(clk), behindProxy)
	owner := ts.anon(t) // the owner's browser (cookie jar)
	if status, body, _ := owner.signIn(admin, adminPassword, from("198.51.100.7")...); status != 200 {
		t.Fatalf("first sign-in: %d %s", status, body)
	}
	attacker := ts.anon(t)
	for i := 0; i < 100; i++ {
		attacker.signIn(admin, "guess-"+fmt.Sprint(i), from("203.0.113.66")...)
	}
	// One attacking address: nobody else is slowed, not even a newcomer.
	if status, body, _ := ts.anon(t).signIn(admin, adminPassword, from("100.64.0.1")...); status != 200 {
		t.Fatalf("a new address after a one-address flood: %d %s", status, body)
	}
	// The attacker's own delay is bounded too: after the policy's cap even
	// the attacker's address may try again.
	if status, _, wait := attacker.signIn(admin, adminPassword, from("203.0.113.66")...); status != http.StatusTooManyRequests || atoi(t, wait) > 900 {
		t.Fatalf("attacker address: %d Retry-After %s, want 429 within the 15 min cap", status, wait)
	}

	// Many addresses, as fast as the throttle lets them, for an hour.
	for i := 0; i < 300; i++ {
		ip := fmt.Sprintf("192.0.%d.%d", 2+i/250, i%250+1)
		if status, _, wait := attacker.signIn(admin, "guess", from(ip)...); status == http.StatusTooManyRequests && i%30 == 0 {
			clk.Add(time.Duration(atoi(t, wait)) * time.Second)
		}
	}
	status, _, wait := ts.anon(t).signIn(admin, adminPassword, from("100.64.0.2")...)
	if status != http.StatusTooManyRequests || atoi(t, wait) > 900 {
		t.Fatalf("an unknown address during a distributed flood: %d Retry-After %s, want slowed by at most 15 min", status, wait)
	}
	if status, body, _ := ts.anon(t).signIn(admin, adminPassword, from("198.51.100.7")...); status != 200 {
		t.Fatalf("the owner's known IP during the flood: %d %s", status, body)
	}
	if status, body, _ := owner.signIn(admin, adminPassword, from("100.64.0.3")...); status != 200 {
		t.Fatalf("the owner's browser on a new address during the flood: %d %s", status, body)
	}
	clk.Add(time.Duration(atoi(t, wait)) * time.Second)
	if status, body, _ := ts.anon(t).signIn(admin, adminPassword, from("100.64.0.2")...); status != 200 {
		t.Fatalf("the unknown address after its wait: %d %s", status, body)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func TestSignInRefusesCrossSiteRequests(t *testing.T) {
	ts := mustStart(t)
	host := strings.TrimPrefix(ts.URL, "http://")
	for _, c := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"no Origin (a script)", nil, 200},
		{"same origin", []string{"Origin", ts.URL, "Sec-Fetch-Site", "same-origin"}, 200},
		{"same origin, no fetch metadata", []string{"Origin", "http://" + host}, 200},
		{"another site's Origin", []string{"Origin", "https://evil.example"}, 403},
		{"opaque Origin", []string{"Origin", "null"}, 403},
		{"cross-site fetch metadata", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site (a sibling subdomain)", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"forged X-Forwarded-Host from an untrusted peer", []string{"Origin", "https://evil.example", "X-Forwarded-Host", "evil.example"}, 403},
	} {
		status, body, _ := ts.anon(t).signIn(admin, adminPassword, c.headers...)
		if status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.want)
		}
		if c.want == 403 && !strings.Contains(body, "cross-site sign-in refused") {
			t.Errorf("%s: message %s", c.name, body)
		}
	}
	// A refused cross-site attempt is not a sign-in attempt: it costs the
	// account nothing.
	c, _ := ts.App.Throttle.Failures(context.Background(), auth.Attempt{Account: admin, IP: netip.MustParseAddr("127.0.0.1")})
	if c.Pair != 0 {
		t.Fatalf("cross-site attempts were counted: %+v", c)
	}
	// Behind a trusted proxy that rewrites Host, its X-Forwarded-Host counts.
	ts2 := mustStart(t, behindProxy)
	if status, body, _ := ts2.anon(t).signIn(admin, adminPassword, "Origin", "https://ferry.example", "X-Forwarded-Host", "ferry.example"); status != 200 {
		t.Fatalf("origin matching the proxy's X-Forwarded-Host: %d %s", status, body)
	}
}

func TestMetricsAreNotAnonymous(t *testing.T) {
	ts := mustStart(t, func(c *app.Config) { c.MetricsToken = "scrape-secret-0123456789" })
	get := func(headers ...string) (int, string) {
		req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(); status != 401 || strings.Contains(body, "ferry_http") {
		t.Fatalf("anonymous /metrics: %d %.200s", status, body)
	}
	if status, _ := get("Authorization", "Bearer wrong-token"); status != 401 {
		t.Fatalf("wrong token: %d", status)
	}
	if status, body := get("Authorization", "Bearer scrape-secret-0123456789"); status != 200 || !strings.Contains(body, "ferry_http_request_duration_seconds") {
		t.Fatalf("metrics token: %d %.200s", status, body)
	}
	// The platform operator may read them with a session; a tenant owner may not.
	op := ts.login(t, admin, adminPassword)
	op.mustGQL(`mutation { createTenant(input: {name: "Bank B", slug: "bank-b"}, ownerEmail: "bob@b.example", ownerPassword: "bob-password-12") { tenant { id } } }`, nil)
	for _, c := range []struct {
		who  *client
		want int
	}{{op, 200}, {ts.login(t, "bob@b.example", "bob-password-12"), 403}} {
		resp, err := c.who.http.Get(ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("/metrics with a session: %d, want %d", resp.StatusCode, c.want)
		}
	}
}

func TestMetricsListener(t *testing.T) {
	for _, token := range []string{"", "scrape-secret-0123456789"} {
		ts := mustStart(t, func(c *app.Config) { c.MetricsToken = token })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ts.App.ServeMetrics(ctx, ln) }()
		get := func(base, auth string) int {
			req, _ := http.NewRequest("GET", base+"/metrics", nil)
			if auth != "" {
				req.Header.Set("Authorization", "Bearer "+auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		private := "http://" + ln.Addr().String()
		wantAnon := 200
		if token != "" {
			wantAnon = 401
			if got := get(private, token); got != 200 {
				t.Errorf("token %q: metrics listener with the token: %d", token, got)
			}
		}
		if got := get(private, ""); got != wantAnon {
			t.Errorf("token %q: anonymous on the metrics listener: %d, want %d", token, got, wantAnon)
		}
		if got := get(ts.URL, ""); got != 401 {
			t.Errorf("token %q: anonymous on the main listener: %d, want 401", token, got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("metrics listener: %v", err)
		}
	}
}
