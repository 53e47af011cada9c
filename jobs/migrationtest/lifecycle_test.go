// Package migrationtest drives the migration lifecycle end to end with real
// processes: `ferry serve` and a registered `ferry agent run --disk-source`
// replicate a real image file through the in-process gateway into the local
// cloud, then test-launch, cut over and roll back through GraphQL.
package migrationtest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud/inspect/imagetest"
)

const migrationFields = `id state percent bytesDone bytesTotal rate eta lastError failureReason allowedActions
	disks { name sizeBytes targetDiskID bytesDone syncedAt }
	latestRecoveryPoint { id kind externalID }
	launches { id kind status message instanceID instanceType sizing checks }`

type proc struct {
	cmd *exec.Cmd
	out *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the binary with args; the process is killed at cleanup.
func start(t testing.TB, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &lockedLog{}}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(args[:min(2, len(args))], " "), tail(p.out.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// buildFerry builds the ferry binary once per test binary run, unless
// FERRY_BIN names one.
var ferryBin struct {
	sync.Once
	bin string
	err error
	out []byte
}

func buildFerry(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("FERRY_BIN"); b != "" {
		return b // a binary built beforehand (make build)
	}
	ferryBin.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-bin")
		if err != nil {
			ferryBin.err = err
			return
		}
		ferryBin.bin = filepath.Join(dir, "ferry")
		cmd := exec.Command("go", "build", "-o", ferryBin.bin, "../../cmd/ferry")
		ferryBin.out, ferryBin.err = cmd.CombinedOutput()
	})
	if ferryBin.err != nil {
		t.Fatalf("go build ./cmd/ferry: %v\n%s", ferryBin.err, ferryBin.out)
	}
	return ferryBin.bin
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond every 200 ms until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond) // polling a real process with a deadline
	}
}

func sha(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// makeImage writes a GPT disk with one ext4 partition, random data in two
// regions and zeros (holes) everywhere else.
func makeImage(t testing.TB, path string, size int64, regions ...[2]int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := imagetest.WriteGPT(f, size, []imagetest.Part{{Start: 1 << 20, Size: size - 2<<20, GPTType: imagetest.GUIDLinux, Name: "root"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(imagetest.Superblock("ext4", "rootfs"), 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		buf := make([]byte, r[1])
		rand.Read(buf)
		if _, err := f.WriteAt(buf, r[0]); err != nil {
			t.Fatal(err)
		}
	}
}

const adminPassword = "correct-horse-battery"

// client is a browser-like API client: a cookie jar and the CSRF token.
type client struct {
	t    testing.TB
	base string
	http *http.Client
	csrf string
}

func (c *client) post(path, body string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
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
	raw string
}

func (r gqlResp) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["code"].(string)
	return s
}

func (c *client) gql(query string, vars map[string]any) gqlResp {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, body := c.post("/graphql", string(b))
	var r gqlResp
	if err := json.Unmarshal(body, &r); err != nil {
		c.t.Fatalf("graphql response is not JSON (status %d): %s", status, body)
	}
	r.raw = string(body)
	return r
}

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

func loginAt(t testing.TB, base, email, password string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	status, body := c.post("/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if status != 200 {
		t.Fatalf("login %s: status %d: %s", email, status, body)
	}
	var out struct{ CSRFToken string }
	json.Unmarshal(body, &out)
	c.csrf = out.CSRFToken
	return c
}

// world is a running control plane with one registered agent whose only
// disk, vda, is an image file.
type world struct {
	bin, base, addr, data, img string
	serve, agent               *proc
	admin                      *client
	hostID                     string
	size                       int64
	// portTries counts the first starts that found their port taken.
	portTries int
	// serveArgs and env are extra arguments and environment of serve.
	serveArgs, env []string
}

func (w *world) startServe(t testing.TB) {
	t.Helper()
	// The images here are filesystems without a kernel: these tests are
	// about processes, so launches are inspected, not booted (the boots:
	// jobs/migration's TestWholeMigrationBoots, e2e scenario 20).
	w.serve = start(t, w.bin, append([]string{"FERRY_SYNC_REDELIVER=5s", "FERRY_LAUNCH_BOOT=off"}, w.env...), append([]string{"serve", "--addr", w.addr, "--data-dir", w.data,
		"--admin-email", "admin@example.com", "--admin-password", adminPassword, "--public-url", w.base}, w.serveArgs...)...)
	taken := false
	waitFor(t, "ferry serve to be ready", 60*time.Second, func() bool {
		if taken = strings.Contains(w.serve.out.String(), "address already in use"); taken {
			return true
		}
		resp, err := http.Get(w.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// freePort closes its listener before serve binds, so another process
	// (a parallel package's test) may take the port meanwhile. Before
	// anyone knows the address (no admin signed in yet), another will do;
	// a restart must keep its address.
	if taken && w.admin == nil && w.portTries < 3 {
		w.portTries++
		w.addr = freePort(t)
		w.base = "http://" + w.addr
		w.startServe(t)
		return
	}
	if taken {
		t.Fatalf("serve could not listen on %s: the port is taken", w.addr)
	}
}

func newWorld(t testing.TB, size int64, regions ...[2]int64) *world {
	t.Helper()
	return newWorldWith(t, nil, nil, size, regions...)
}

// newWorldWith is newWorld with extra arguments and environment for serve.
func newWorldWith(t testing.TB, serveArgs, env []string, size int64, regions ...[2]int64) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs ferry serve and ferry agent")
	}
	tmp := t.TempDir()
	w := &world{bin: buildFerry(t), addr: freePort(t), data: filepath.Join(tmp, "server"), img: filepath.Join(tmp, "web1.img"), size: size,
		serveArgs: serveArgs, env: env}
	w.base = "http://" + w.addr
	w.startServe(t)
	w.admin = loginAt(t, w.base, "admin@example.com", adminPassword)
	makeImage(t, w.img, size, regions...)
	tok := w.admin.mustGQL(`mutation { createRegistrationToken(input: {name: "e2e"}) { token } }`, nil)
	token := dig(tok, "createRegistrationToken", "token").(string)
	state := filepath.Join(tmp, "agent")
	if out, err := exec.Command(w.bin, "agent", "register", "--server", w.base, "--token", token, "--state", state).CombinedOutput(); err != nil {
		t.Fatalf("agent register: %v\n%s", err, out)
	}
	w.agent = start(t, w.bin, nil, "agent", "run", "--state", state, "--disk-source", "vda="+w.img, "--sample-every", "2s")
	waitFor(t, "the agent's host with disk vda", 60*time.Second, func() bool {
		d := w.admin.mustGQL(`{ hosts(first: 10) { edges { node { id name disks { name sizeBytes } } } } }`, nil)
		for _, e := range dig(d, "hosts", "edges").([]any) {
			for _, dk := range dig(e, "node", "disks").([]any) {
				if dig(dk, "name") == "vda" && dig(dk, "sizeBytes") == float64(size) {
					w.hostID = dig(e, "node", "id").(string)
					return true
				}
			}
		}
		return false
	})
	return w
}

// migration reads a migration as c sees it (nil when it cannot).
func (w *world) migration(t testing.TB, c *client, id string) map[string]any {
	t.Helper()
	r := c.gql(`query($id: ID!) { node(id: $id) { ... on Migration { `+migrationFields+` } } }`, map[string]any{"id": id})
	if len(r.Errors) > 0 {
		t.Fatalf("read migration: %s", r.raw)
	}
	m, _ := dig(r.Data, "node").(map[string]any)
	return m
}

func TestMigrationLifecycleProcesses(t *testing.T) {
	const size = 160 << 20
	w := newWorld(t, size, [2]int64{4 << 20, 64 << 20}, [2]int64{100 << 20, 16 << 20})
	admin, img, data, hostID, agent := w.admin, w.img, w.data, w.hostID, w.agent
	srcSum := sha(t, img)

	started := time.Now()
	// 80 MiB of data at 16 MiB/s: long enough to watch the progress move.
	d := admin.mustGQL(`mutation($h: [ID!]!) { startMigration(hostIds: $h, rateLimit: "16MiB/s") { id state } }`, map[string]any{"h": []string{hostID}})
	migID := dig(d, "startMigration", 0, "id").(string)
	get := func(c *client) map[string]any { return w.migration(t, c, migID) }
	var m map[string]any
	percents := map[float64]bool{}
	waitFor(t, "the initial sync to reach 100%", 120*time.Second, func() bool {
		m = get(admin)
		percents[m["percent"].(float64)] = true
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v", m["failureReason"])
		}
		return m["state"] == "syncing" && m["percent"] == float64(100) && m["latestRecoveryPoint"] != nil
	})
	t.Logf("initial sync of %d MiB (80 MiB of data at 16 MiB/s): %s; percents seen %v", size>>20, time.Since(started).Round(time.Millisecond), keys(percents))
	if len(percents) < 3 {
		t.Errorf("progress went straight from 0 to 100 (%v); want the gateway's checkpoints in between", keys(percents))
	}
	target := filepath.Join(data, "cloud", "disks", dig(m, "disks", 0, "targetDiskID").(string)+".img")
	if got := sha(t, target); got != srcSum {
		t.Fatalf("target %s sha256 %s, source %s", target, got, srcSum)
	}
	if k := dig(m, "latestRecoveryPoint", "kind"); k != "initial" {
		t.Errorf("first recovery point kind %v, want initial", k)
	}

	// Illegal: cut over before a test launch; migrate the host twice.
	if r := admin.gql(`mutation($id: ID!) { cutover(migrationId: $id) { id } }`, map[string]any{"id": migID}); r.code() != "CONFLICT" || !strings.Contains(r.raw, "test-launch") {
		t.Fatalf("cutover from syncing: want CONFLICT naming the test launch, got %s", r.raw)
	}
	if r := admin.gql(`mutation($h: [ID!]!) { startMigration(hostIds: $h, rateLimit: "fast") { id } }`, map[string]any{"h": []string{hostID}}); r.code() != "INVALID" || !strings.Contains(r.raw, "rate limit") {
		t.Fatalf("bad rate limit: want INVALID naming the rate limit, got %s", r.raw)
	}
	if r := admin.gql(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id } }`, map[string]any{"h": []string{hostID}}); r.code() != "CONFLICT" {
		t.Fatalf("second migration of the host: want CONFLICT, got %s", r.raw)
	}

	// Test launch of the newest point: checks pass, the source is untouched.
	l := admin.mustGQL(`mutation($id: ID!) { testLaunch(migrationId: $id) { id status kind } }`, map[string]any{"id": migID})
	if dig(l, "testLaunch", "status") != "pending" {
		t.Fatalf("test launch: %v", l)
	}
	waitFor(t, "the test launch to pass", 60*time.Second, func() bool {
		m = get(admin)
		return m["state"] == "cutover_ready"
	})
	tl := dig(m, "launches", 0)
	if dig(tl, "status") != "succeeded" || dig(tl, "kind") != "test" || len(dig(tl, "checks").([]any)) < 2 {
		t.Fatalf("test launch record: %v", tl)
	}
	// Not booted (FERRY_LAUNCH_BOOT=off): the launch passed, and says it
	// was not booted and why.
	if msg, _ := dig(tl, "message").(string); !strings.Contains(msg, "was not booted") || !strings.Contains(msg, "FERRY_LAUNCH_BOOT=off") {
		t.Errorf("the test launch's message %q does not say the copy was not booted, and why", msg)
	}
	if sha(t, img) != srcSum {
		t.Fatal("the test launch changed the source")
	}

	// New writes on the source, then cut over: the final delta carries them.
	src, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{30 << 20, 50<<20 + 4096, 60 << 20, 70<<20 + 12345} {
		b := make([]byte, 4096)
		rand.Read(b)
		if _, err := src.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	src.Close()
	newSum := sha(t, img)
	cut := time.Now()
	admin.mustGQL(`mutation($id: ID!) { cutover(migrationId: $id) { id state } }`, map[string]any{"id": migID})
	waitFor(t, "the cutover", 120*time.Second, func() bool {
		m = get(admin)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v", m["failureReason"])
		}
		return m["state"] == "cut_over"
	})
	t.Logf("cutover (final delta, point, launch, checks): %s", time.Since(cut).Round(time.Millisecond))
	if got := sha(t, target); got != newSum {
		t.Fatalf("after cutover the target is %s, the source %s", got, newSum)
	}
	var live map[string]any
	for _, x := range dig(m, "launches").([]any) {
		if dig(x, "kind") == "cutover" {
			live = x.(map[string]any)
		}
		if dig(x, "kind") == "test" && dig(x, "status") != "terminated" {
			t.Errorf("test launch %v not discarded at cutover", x)
		}
	}
	if live == nil || live["status"] != "succeeded" {
		t.Fatalf("cutover launch: %v", dig(m, "launches"))
	}
	liveDisk := filepath.Join(data, "cloud", "disks", live["instanceID"].(string)+"-disk.img")
	if got := sha(t, liveDisk); got != newSum {
		t.Fatalf("launched disk %s is %s, the source %s", liveDisk, got, newSum)
	}
	if k := dig(m, "latestRecoveryPoint", "kind"); k != "cutover" {
		t.Errorf("newest point kind %v, want cutover", k)
	}

	// Another tenant sees nothing and can change nothing.
	admin.mustGQL(`mutation { createTenant(input: {name: "Other", slug: "other"}, ownerEmail: "o@other.example", ownerPassword: "other-tenant-password") { tenant { id } } }`, nil)
	other := loginAt(t, w.base, "o@other.example", "other-tenant-password")
	if r := other.gql(`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": migID}); dig(r.Data, "node") != nil {
		t.Fatalf("another tenant reads the migration: %s", r.raw)
	}
	if r := other.gql(`mutation($id: ID!) { rollback(migrationId: $id) { id } }`, map[string]any{"id": migID}); r.code() != "NOT_FOUND" {
		t.Fatalf("another tenant's rollback: want NOT_FOUND, got %s", r.raw)
	}
	if r := other.gql(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id } }`, map[string]any{"h": []string{hostID}}); r.code() != "NOT_FOUND" {
		t.Fatalf("another tenant's startMigration of our host: want NOT_FOUND, got %s", r.raw)
	}

	// Roll back: the launched copy goes, the source stays as it is.
	admin.mustGQL(`mutation($id: ID!) { rollback(migrationId: $id) { id state } }`, map[string]any{"id": migID})
	waitFor(t, "the rollback", 60*time.Second, func() bool {
		m = get(admin)
		return m["state"] == "rolled_back"
	})
	if _, err := os.Stat(liveDisk); !os.IsNotExist(err) {
		t.Fatalf("launched disk still there after rollback: %v", err)
	}
	if sha(t, img) != newSum {
		t.Fatal("rollback changed the source")
	}
	if r := admin.gql(`mutation($id: ID!) { rollback(migrationId: $id) { id } }`, map[string]any{"id": migID}); r.code() != "CONFLICT" {
		t.Fatalf("second rollback: want CONFLICT, got %s", r.raw)
	}
	if !strings.Contains(agent.out.String(), "sync done, target verified") {
		t.Errorf("agent log has no completed sync:\n%s", tail(agent.out.String(), 3000))
	}
}

func keys(m map[float64]bool) []float64 {
	var out []float64
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMigrationSurvivesServerKill kills `ferry serve` (SIGKILL, embedded
// queue and all) right after a migration is started: the reconciler
// re-derives the work from the database and the sync completes.
func TestMigrationSurvivesServerKill(t *testing.T) {
	const size = 48 << 20
	w := newWorld(t, size, [2]int64{4 << 20, 16 << 20})
	d := w.admin.mustGQL(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id } }`, map[string]any{"h": []string{w.hostID}})
	migID := dig(d, "startMigration", 0, "id").(string)
	w.serve.cmd.Process.Signal(syscall.SIGKILL)
	w.serve.cmd.Wait()
	w.startServe(t)
	w.admin = loginAt(t, w.base, "admin@example.com", adminPassword)
	var m map[string]any
	waitFor(t, "the sync to complete after the restart", 120*time.Second, func() bool {
		m = w.migration(t, w.admin, migID)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v", m["failureReason"])
		}
		return m["state"] == "syncing" && m["percent"] == float64(100)
	})
	target := filepath.Join(w.data, "cloud", "disks", dig(m, "disks", 0, "targetDiskID").(string)+".img")
	if sha(t, target) != sha(t, w.img) {
		t.Fatal("target differs from the source after a restart mid-migration")
	}
	if !strings.Contains(w.serve.out.String(), "re-enqueued migration work") {
		t.Error("the restarted server did not say it re-enqueued work from the database")
	}

	// Again, this time right after asking for a test launch: the pending
	// Launch row is picked up again and the launch happens exactly once.
	w.admin.mustGQL(`mutation($id: ID!) { testLaunch(migrationId: $id) { id } }`, map[string]any{"id": migID})
	w.serve.cmd.Process.Signal(syscall.SIGKILL)
	w.serve.cmd.Wait()
	w.startServe(t)
	w.admin = loginAt(t, w.base, "admin@example.com", adminPassword)
	waitFor(t, "the test launch after the restart", 60*time.Second, func() bool {
		m = w.migration(t, w.admin, migID)
		return m["state"] == "cutover_ready"
	})
	if ls := dig(m, "launches").([]any); len(ls) != 1 || dig(ls[0], "status") != "succeeded" {
		t.Fatalf("launches after the restart: %v", ls)
	}
	copies, _ := filepath.Glob(filepath.Join(w.data, "cloud", "disks", "i-*-disk.img"))
	if len(copies) != 1 {
		t.Fatalf("launched disks on the local cloud: %v, want exactly one", copies)
	}
}
