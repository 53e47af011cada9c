package app_test

import (
	"bytes"
	"context"
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/pgtest"
)

const adminPassword = "correct-horse-battery"

// syncBuffer collects logs from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Since returns what was written after the first n bytes, and the length
// now (to pass as n next time).
func (s *syncBuffer) Since(n int) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b.Bytes()[min(n, s.b.Len()):]), s.b.Len()
}

// countingDriver counts the statements sent to the database.
type countingDriver struct {
	dialect.Driver
	n atomic.Int64
}

func (d *countingDriver) Query(ctx context.Context, q string, args, v any) error {
	d.n.Add(1)
	return d.Driver.Query(ctx, q, args, v)
}

func (d *countingDriver) Exec(ctx context.Context, q string, args, v any) error {
	d.n.Add(1)
	return d.Driver.Exec(ctx, q, args, v)
}

func (d *countingDriver) Tx(ctx context.Context) (dialect.Tx, error) { return d.Driver.Tx(ctx) }

// QueryContext passes ent's raw queries (used by the tenant reference check) through, counted.
func (d *countingDriver) QueryContext(ctx context.Context, q string, args ...any) (*stdsql.Rows, error) {
	d.n.Add(1)
	return d.Driver.(interface {
		QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
	}).QueryContext(ctx, q, args...)
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// testDatabase is the database this run of the suite claims behaviour on:
// FERRY_TEST_DATABASE=postgres runs every server on a database of a real
// PostgreSQL server (make test runs the suite once on each).
var testDatabase = os.Getenv("FERRY_TEST_DATABASE")

var (
	dbMu    sync.Mutex
	dbByDir = map[string]string{}
)

// databaseFor returns the FERRY_DATABASE_URL of the server whose data
// directory is dir: a SQLite file in dir, or, in a PostgreSQL run, one
// PostgreSQL database per data directory, so that a server restarted on the
// same directory finds its data again.
func databaseFor(t testing.TB, dir string) string {
	t.Helper()
	switch testDatabase {
	case "", "sqlite":
		return filepath.Join(dir, "ferry.db")
	case "postgres":
	default:
		t.Fatalf("FERRY_TEST_DATABASE=%q: want sqlite or postgres", testDatabase)
	}
	dbMu.Lock()
	defer dbMu.Unlock()
	if u, ok := dbByDir[dir]; ok {
		return u
	}
	u := pgtest.Database(t)
	dbByDir[dir] = u
	return u
}

type testServer struct {
	URL    string
	App    *app.App
	Logs   *syncBuffer
	Banner *bytes.Buffer
	SQL    *countingDriver
}

// mustStart runs a whole Ferry server on a real SQLite file in a temp dir,
// with the embedded queue, behind a real loopback listener.
// Options change the configuration before the server starts.
func mustStart(t testing.TB, options ...func(*app.Config)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	ts := &testServer{Logs: logs, Banner: &bytes.Buffer{}}
	cfg := app.Config{
		DataDir:       t.TempDir(),
		AdminEmail:    "admin@example.com",
		AdminPassword: adminPassword,
		Migrate:       true,
		Log:           slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Banner:        ts.Banner,
		WrapDriver: func(d dialect.Driver) dialect.Driver {
			ts.SQL = &countingDriver{Driver: d}
			return ts.SQL
		},
	}
	for _, o := range options {
		o(&cfg)
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = databaseFor(t, cfg.DataDir)
	}
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start app: %v", err)
	}
	srv := httptest.NewServer(a.Web)
	t.Cleanup(func() { srv.Close(); a.Close() })
	ts.URL, ts.App = srv.URL, a
	return ts
}

// client is a browser-like API client: a cookie jar and the CSRF token.
type client struct {
	t     testing.TB
	base  string
	http  *http.Client
	csrf  string
	token string // API token, used instead of cookies when set
}

func (ts *testServer) anon(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: ts.URL, http: &http.Client{Jar: jar}}
}

func (ts *testServer) login(t testing.TB, email, password string) *client {
	t.Helper()
	c := ts.anon(t)
	status, body := c.post("/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if status != 200 {
		t.Fatalf("login %s: status %d: %s", email, status, body)
	}
	var out struct{ CSRFToken string }
	json.Unmarshal(body, &out)
	c.csrf = out.CSRFToken
	return c
}

func (c *client) post(path, body string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type gqlResp struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	status int
	raw    string
}

func (r gqlResp) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["code"].(string)
	return s
}

// gql posts a GraphQL operation.
func (c *client) gql(query string, vars map[string]any) gqlResp {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, body := c.post("/graphql", string(b))
	var r gqlResp
	if err := json.Unmarshal(body, &r); err != nil {
		c.t.Fatalf("graphql response is not JSON (status %d): %s", status, body)
	}
	r.status, r.raw = status, string(body)
	return r
}

// mustGQL fails the test on any GraphQL error.
func (c *client) mustGQL(query string, vars map[string]any) map[string]any {
	c.t.Helper()
	r := c.gql(query, vars)
	if len(r.Errors) > 0 {
		c.t.Fatalf("graphql errors: %s", r.raw)
	}
	return r.Data
}

// dig walks a decoded JSON value by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}
