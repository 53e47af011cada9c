// Package scaleout_test runs Ferry the way a scaled-out installation does:
// two `ferry serve` replicas (separate processes) behind a small reverse
// proxy, two `ferry worker` processes, one real redis-server and one real
// PostgreSQL database, and checks that nothing lives in one process: a
// session made on one replica works on the other, the sign-in throttle
// counts across them, a live progress subscription survives its replica's
// restart, and a plan whose worker is SIGKILLed mid-task is finished by the
// other worker.
package scaleout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/pgtest"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/planner"
	"github.com/ferry-migrate/ferry/planner/estate"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	adminEmail    = "admin@example.com"
	adminPassword = "correct-horse-battery"
)

// buildFerry builds cmd/ferry into a temporary directory.
func buildFerry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ferry: %v\n%s", err, out)
	}
	return bin
}

// proc is one Ferry process of the installation.
type proc struct {
	name string
	args []string
	env  []string
	bin  string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.out = &lockedBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
}

// stop ends the process with sig and waits for it.
func (p *proc) stop(sig os.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, p *proc, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", p.name, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become ready: %v\n%s", p.name, err, p.out.String())
		}
		time.Sleep(100 * time.Millisecond) // polling for readiness with a deadline
	}
}

// proxy spreads requests round-robin over the replicas that are up and
// remembers which replica took each websocket.
type proxy struct {
	mu       sync.Mutex
	backends []*url.URL
	up       []bool
	next     int
	lastWS   atomic.Int32
}

func (p *proxy) pick() (int, *url.URL) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.backends {
		i := p.next % len(p.backends)
		p.next++
		if p.up[i] {
			return i, p.backends[i]
		}
	}
	return -1, nil
}

func (p *proxy) setUp(i int, up bool) {
	p.mu.Lock()
	p.up[i] = up
	p.mu.Unlock()
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i, target := p.pick()
	if target == nil {
		http.Error(w, "no replica up", http.StatusBadGateway)
		return
	}
	if r.Header.Get("Upgrade") != "" {
		p.lastWS.Store(int32(i))
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // the replicas check same-origin against the public host
	}}
	rp.ServeHTTP(w, r)
}

// client is a browser: one cookie jar for every address of 127.0.0.1.
type client struct {
	t    *testing.T
	http *http.Client
	csrf string
}

func (c *client) post(base, path, body string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (c *client) signIn(base, email, password string) int {
	status, body := c.post(base, "/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	var out struct{ CSRFToken string }
	json.Unmarshal(body, &out)
	if out.CSRFToken != "" {
		c.csrf = out.CSRFToken
	}
	return status
}

func (c *client) gql(base, query string, vars map[string]any) map[string]any {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, body := c.post(base, "/graphql", string(b))
	var r struct {
		Data   map[string]any    `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Errors) > 0 || status != 200 {
		c.t.Fatalf("graphql at %s: status %d: %s", base, status, body)
	}
	return r.Data
}

func TestTwoReplicasTwoWorkers(t *testing.T) {
	bin := buildFerry(t)
	pgURL := pgtest.Database(t)
	redisURL := redistest.Start(t)
	keys := filepath.Join(t.TempDir(), "keys")
	ctx := context.Background()

	// The database, migrated once, seeded with an estate large enough that
	// its plan goes through the queue.
	db, err := database.Open(ctx, pgURL, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	common := []string{"FERRY_DATABASE_URL=" + pgURL, "FERRY_REDIS_URL=" + redisURL, "FERRY_KEYS_DIR=" + keys,
		"FERRY_ADMIN_EMAIL=" + adminEmail, "FERRY_ADMIN_PASSWORD=" + adminPassword}
	var replicas []*proc
	var bases []string
	px := &proxy{}
	for i := range 2 {
		addr := freeAddr(t)
		p := &proc{name: fmt.Sprintf("replica %d", i), bin: bin, env: common,
			args: []string{"serve", "--addr", addr, "--data-dir", t.TempDir(), "--workers", "0"}}
		p.start(t)
		t.Cleanup(func() {
			p.stop(os.Interrupt)
			if t.Failed() {
				t.Logf("%s:\n%s", p.name, p.out.String())
			}
		})
		replicas = append(replicas, p)
		bases = append(bases, "http://"+addr)
		u, _ := url.Parse("http://" + addr)
		px.backends = append(px.backends, u)
		px.up = append(px.up, true)
	}
	for i, p := range replicas {
		waitHealthy(t, p, bases[i])
	}
	front := httptest.NewServer(px)
	defer front.Close()

	// Sign in on one replica, query on the other, and through the proxy.
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, http: &http.Client{Jar: jar}}
	if st := c.signIn(bases[0], adminEmail, adminPassword); st != 200 {
		t.Fatalf("sign-in on replica 0: %d", st)
	}
	if got := c.gql(bases[1], `{ viewer { user { email } } }`, nil); fmt.Sprint(got["viewer"]) != fmt.Sprint(map[string]any{"user": map[string]any{"email": adminEmail}}) {
		t.Fatalf("replica 1 does not know replica 0's session: %v", got)
	}
	for range 4 {
		c.gql(front.URL, `{ viewer { user { email } } }`, nil)
	}

	// The sign-in throttle counts failures made on either replica.
	bad := &client{t: t, http: &http.Client{}}
	statuses := []int{}
	for i := range 7 {
		statuses = append(statuses, bad.signIn(bases[i%2], "victim@example.com", "wrong"))
	}
	if fmt.Sprint(statuses) != "[401 401 401 401 401 429 429]" {
		t.Fatalf("failed sign-ins alternating replicas answered %v; the throttle must count across them", statuses)
	}

	sys := viewer.SystemContext(ctx)
	tid := db.Client.Tenant.Query().Where(tenant.Slug("default")).OnlyIDX(sys)
	tctx := viewer.TenantContext(ctx, tid)

	// A live progress subscription, through the proxy, across a restart of
	// the replica that carries it.
	h := db.Client.Host.Create().SetName("web-01").SaveX(tctx)
	m := db.Client.Migration.Create().SetHostID(h.ID).SetBytesTotal(1 << 30).SaveX(tctx)
	ws := dialWS(t, front.URL, c)
	ws.subscribe(m.ID)
	if ev := ws.progress(); ev.BytesDone != 0 {
		t.Fatalf("first event: %+v", ev)
	}
	db.Client.Migration.UpdateOneID(m.ID).SetBytesDone(100 << 20).ExecX(tctx)
	if ev := ws.progress(); ev.BytesDone != 100<<20 {
		t.Fatalf("progress before the restart: %+v", ev)
	}
	carrier := int(px.lastWS.Load())
	px.setUp(carrier, false)
	replicas[carrier].stop(os.Interrupt)
	ws.waitClosed()
	ws = dialWS(t, front.URL, c) // the proxy sends it to the replica still up
	if int(px.lastWS.Load()) == carrier {
		t.Fatalf("the proxy reconnected to the stopped replica")
	}
	ws.subscribe(m.ID)
	if ev := ws.progress(); ev.BytesDone != 100<<20 {
		t.Fatalf("first event after reconnecting: %+v", ev)
	}
	db.Client.Migration.UpdateOneID(m.ID).SetBytesDone(300 << 20).ExecX(tctx)
	if ev := ws.progress(); ev.BytesDone != 300<<20 {
		t.Fatalf("progress after the restart: %+v", ev)
	}
	replicas[carrier].start(t)
	waitHealthy(t, replicas[carrier], bases[carrier])
	px.setUp(carrier, true)
	if got := c.gql(bases[carrier], `{ viewer { user { email } } }`, nil); got["viewer"] == nil {
		t.Fatalf("the restarted replica lost the session")
	}

	// A plan whose worker is SIGKILLed mid-task is finished by the other.
	e, _ := estate.Generate(estate.Options{Hosts: planning.InlineHosts + 3000, Seed: 7})
	seed(t, db.Client, tid, e)
	worker := func(i int) *proc {
		p := &proc{name: fmt.Sprintf("worker %d", i), bin: bin, env: common,
			args: []string{"worker", "--data-dir", t.TempDir(), "--concurrency", "2"}}
		t.Cleanup(func() {
			p.stop(os.Interrupt)
			if t.Failed() {
				t.Logf("%s:\n%s", p.name, p.out.String())
			}
		})
		return p
	}
	w0, w1 := worker(0), worker(1)
	w0.start(t)
	d := c.gql(front.URL, `mutation($in: GeneratePlanInput!) { generatePlan(input: $in) { id status } }`, map[string]any{"in": map[string]any{
		"name": "wave plan", "target": "alibaba", "constraints": map[string]any{"start": "2026-12-07", "timezone": "Asia/Shanghai",
			"bandwidth": "1Gbps", "maxHostsPerWave": 200, "cutoverWindows": []string{"Sat 22:00-04:00"}}}})
	var planID int
	fmt.Sscan(fmt.Sprint(d["generatePlan"].(map[string]any)["id"]), &planID)
	insp := asynq.NewInspector(mustRedisOpt(t, redisURL))
	defer insp.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		active, _ := insp.ListActiveTasks("default")
		if len(active) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker 0 never took the plan task\n%s", w0.out.String())
		}
		time.Sleep(5 * time.Millisecond) // polling the queue with a deadline
	}
	w0.stop(syscall.SIGKILL)
	if st := db.Client.Plan.GetX(tctx, planID).Status; st == plan.StatusReady || st == plan.StatusInfeasible {
		t.Fatalf("the plan finished before its worker was killed; the estate is too small to catch it mid-task")
	}
	w1.start(t)
	deadline = time.Now().Add(4 * time.Minute)
	for {
		p := db.Client.Plan.GetX(tctx, planID)
		if p.Status == plan.StatusReady || p.Status == plan.StatusInfeasible {
			break
		}
		if p.Status == plan.StatusFailed || time.Now().After(deadline) {
			t.Fatalf("plan after its worker was killed: %s %q\nworker 1:\n%s", p.Status, p.Error, w1.out.String())
		}
		time.Sleep(200 * time.Millisecond) // polling the database with a deadline
	}
	waves := db.Client.Wave.Query().CountX(tctx)
	members := db.Client.WaveMember.Query().CountX(tctx)
	hosts := db.Client.Host.Query().CountX(tctx)
	if waves == 0 || members != hosts {
		t.Fatalf("the recovered plan wrote %d waves with %d members for %d hosts (a doubled run?)", waves, members, hosts)
	}
	if !strings.Contains(w1.out.String(), `"msg":"plan generated"`) {
		t.Fatalf("worker 1 did not run the plan:\n%s", w1.out.String())
	}
	// On a real Redis, asynq's exporter reports the queues.
	req, _ := http.NewRequest("GET", bases[0]+"/metrics", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`asynq_queue_size{queue="default"}`, `asynq_queue_latency_seconds{queue="default"}`, `ferry_plans{status="ready"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("replica 0's /metrics lacks %s", want)
		}
	}
	// One log format: every line every process wrote is JSON.
	for _, p := range append(replicas, w0, w1) {
		for i, line := range strings.Split(strings.TrimSpace(p.out.String()), "\n") {
			if line != "" && !json.Valid([]byte(line)) {
				t.Errorf("%s, line %d is not JSON: %s", p.name, i+1, line)
			}
		}
	}
}

func mustRedisOpt(t *testing.T, u string) asynq.RedisConnOpt {
	o, err := asynq.ParseRedisURI(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// seed writes the estate's hosts and disks in bulk as the system.
func seed(t *testing.T, c *ent.Client, tid int, e *planner.Estate) {
	t.Helper()
	ctx := viewer.SystemContext(context.Background())
	for i := 0; i < len(e.Hosts); i += 500 {
		var b []*ent.HostCreate
		for _, h := range e.Hosts[i:min(i+500, len(e.Hosts))] {
			b = append(b, c.Host.Create().SetTenantID(tid).SetName(h.Name).SetOs(h.OS).SetCpus(h.CPUs).SetMemoryMib(h.MemoryMiB).
				SetDiskProvisionedBytes(h.ProvisionedBytes()).SetDiskUsedBytes(h.UsedBytes()))
		}
		c.Host.CreateBulk(b...).ExecX(ctx)
	}
}

// ws is a graphql-transport-ws client.
type ws struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan []byte
}

func dialWS(t *testing.T, base string, c *client) *ws {
	t.Helper()
	u, _ := url.Parse(base)
	var cookies []string
	for _, ck := range c.http.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	h := http.Header{"Cookie": {strings.Join(cookies, "; ")}}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql", &websocket.DialOptions{
		HTTPHeader: h, Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	w := &ws{t: t, conn: conn, msgs: make(chan []byte, 64)}
	t.Cleanup(func() { conn.CloseNow() })
	go func() {
		defer close(w.msgs)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			if strings.Contains(string(b), `"type":"ping"`) {
				conn.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pong"}`))
				continue
			}
			w.msgs <- b
		}
	}()
	w.send(`{"type":"connection_init","payload":{}}`)
	if m := w.next(); !strings.Contains(m, "connection_ack") {
		t.Fatalf("expected connection_ack, got %s", m)
	}
	return w
}

func (w *ws) send(s string) { w.conn.Write(context.Background(), websocket.MessageText, []byte(s)) }

func (w *ws) subscribe(id int) {
	p, _ := json.Marshal(map[string]any{"query": `subscription($ids: [ID!]) { migrationProgress(ids: $ids) { id bytesDone } }`,
		"variables": map[string]any{"ids": []int{id}}})
	w.send(`{"id":"1","type":"subscribe","payload":` + string(p) + `}`)
}

func (w *ws) next() string {
	w.t.Helper()
	select {
	case b, ok := <-w.msgs:
		if !ok {
			w.t.Fatalf("websocket closed")
		}
		return string(b)
	case <-time.After(15 * time.Second):
		w.t.Fatalf("no websocket message within 15 s")
	}
	return ""
}

type progressEvent struct {
	ID        string `json:"id"`
	BytesDone int64  `json:"bytesDone"`
}

func (w *ws) progress() progressEvent {
	w.t.Helper()
	var m struct {
		Type    string
		Payload struct {
			Data struct{ MigrationProgress progressEvent } `json:"data"`
		}
	}
	raw := w.next()
	if json.Unmarshal([]byte(raw), &m); m.Type != "next" {
		w.t.Fatalf("expected a next message, got %s", raw)
	}
	return m.Payload.Data.MigrationProgress
}

// waitClosed waits for the server side to end the websocket.
func (w *ws) waitClosed() {
	w.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-w.msgs:
			if !ok {
				return
			}
		case <-deadline:
			w.t.Fatalf("the stopped replica's websocket stayed open")
		}
	}
}
