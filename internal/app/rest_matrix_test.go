package app_test

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/ferry-migrate/ferry/internal/app"
)

// restMatrix is every REST route of the server with what each kind of
// caller gets (the GraphQL operations have TestAuthorizationMatrix): the
// status for an anonymous caller, for a signed-in browser session of the
// Default tenant's viewer, and with an API token of that viewer. Each route
// also names how it authenticates. A route missing here fails the test.
var restMatrix = []struct {
	method, pattern string
	path            string // a concrete path for the pattern
	anon, viewer    int
	how             string
}{
	{"GET", "/healthz", "/healthz", 200, 200, "open: liveness"},
	{"GET", "/readyz", "/readyz", 200, 200, "open: readiness"},
	{"*", "/metrics", "/metrics", 401, 403, "metrics token or the platform operator"},
	{"POST", "/auth/login", "/auth/login", 400, 400, "password (body); same origin"},
	{"POST", "/auth/logout", "/auth/logout", 401, 200, "session"},
	{"GET", "/auth/me", "/auth/me", 401, 200, "session or API token"},
	{"*", "/graphql", "/graphql", 401, 422, "session (+CSRF) or API token; the operation matrix decides the rest"},
	{"POST", "/api/v1/imports", "/api/v1/imports", 401, 403, "session (+CSRF) or API token; consultant and up"},
	{"GET", "/api/v1/reports/{file}", "/api/v1/reports/assessment.html", 401, 200, "session or API token; the caller's own tenant"},
	{"GET", "/api/{action}", "/api/whoami?traceId=rest-matrix-anon", 401, 401, "the marketplace's access token (HMAC), not Ferry's credentials"},
	{"GET", "/marketplace/spi", "/marketplace/spi?action=createInstance", 403, 403, "the marketplace's MD5 SPI token"},
	{"POST", "/agent/v1/register", "/agent/v1/register", 401, 401, "registration token (body)"},
	{"*", "/agent/v1/*", "/agent/v1/heartbeat", 401, 401, "agent credential"},
	{"*", "/sync/v1/*", "/sync/v1/disks/d1/checkpoint", 401, 401, "per-disk sync credential"},
	{"*", "/cloud/v1/alibaba/*", "/cloud/v1/alibaba/report", 401, 401, "a provider's instances calling back: a one-time ticket (register) or the gateway's bearer, never Ferry's credentials"},
	{"*", "/gateway/v1/revocations", "/gateway/v1/revocations?after=1", 401, 401, "a remote gateway's own credential (its registration's bearer), never Ferry's credentials; its own tenant's events only"},
	{"*", "/*", "/", 200, 200, "open: the UI's files"},
}

func TestRESTRouteMatrix(t *testing.T) {
	ts := mustStart(t, func(c *app.Config) {
		c.Marketplace = app.MarketplaceConfig{ISVKey: "k", TokenKey: "k"}
	})
	admin := ts.login(t, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createUser(input: {email: "v@example.com", role: viewer}, password: "viewer-password-1") { id } }`, nil)
	viewerC := ts.login(t, "v@example.com", "viewer-password-1")

	listed := map[string]bool{}
	for _, r := range restMatrix {
		listed[r.method+" "+r.pattern] = true
	}
	var missing []string
	chi.Walk(ts.App.Web.Routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !listed[method+" "+route] && !listed["* "+route] {
			missing = append(missing, method+" "+route)
		}
		return nil
	})
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("routes without a row in restMatrix (add what each caller gets): %s", strings.Join(missing, ", "))
	}
	do := func(c *client, method, path string) int {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		h := &http.Client{}
		if c != nil {
			h = c.http
			if c.csrf != "" {
				req.Header.Set("X-CSRF-Token", c.csrf)
			}
		}
		resp, err := h.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, r := range restMatrix {
		m := r.method
		if m == "*" {
			m = "POST"
			if r.pattern == "/metrics" || r.pattern == "/*" || r.pattern == "/sync/v1/*" || r.pattern == "/gateway/v1/revocations" {
				m = "GET"
			}
		}
		if got := do(nil, m, r.path); got != r.anon {
			t.Errorf("%s %s anonymous: %d, want %d (%s)", m, r.path, got, r.anon, r.how)
		}
		if r.pattern == "/auth/logout" {
			continue // would end the viewer's session for the rows below
		}
		if got := do(viewerC, m, r.path); got != r.viewer {
			t.Errorf("%s %s as a viewer: %d, want %d (%s)", m, r.path, got, r.viewer, r.how)
		}
	}
	if got := do(viewerC, "POST", "/auth/logout"); got != 200 {
		t.Errorf("POST /auth/logout as a viewer: %d", got)
	}
}
