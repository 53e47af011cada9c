package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery/agentapi"
	"github.com/ferry-migrate/ferry/discovery/importer"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/secrets"
)

var (
	discBuildOnce sync.Once
	discBin       string
	discBuildErr  error
)

// mustBuildFerry builds cmd/ferry once per test binary.
func mustBuildFerry(t *testing.T) string {
	t.Helper()
	discBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-bin-")
		if err != nil {
			discBuildErr = err
			return
		}
		discBin = filepath.Join(dir, "ferry")
		cmd := exec.Command("go", "build", "-o", discBin, "./cmd/ferry")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			discBuildErr = fmt.Errorf("go build ./cmd/ferry: %v\n%s", err, out)
		}
	})
	if discBuildErr != nil {
		t.Fatal(discBuildErr)
	}
	return discBin
}

// serveProcess is `ferry serve` running as its own process.
type serveProcess struct {
	URL, DataDir string
	Pid          int
	stderr       *syncBuffer
}

// startServe runs `ferry serve` on a fresh data directory, or on dataDir
// when one is given.
func startServe(t *testing.T, bin string, dataDir ...string) *serveProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sp := &serveProcess{URL: "http://" + addr, DataDir: t.TempDir(), stderr: &syncBuffer{}}
	if len(dataDir) > 0 {
		sp.DataDir = dataDir[0]
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--data-dir", sp.DataDir, "--workers", "0",
		"--admin-email", "admin@example.com", "--admin-password", adminPassword, "--public-url", sp.URL)
	cmd.Env = append(os.Environ(), "FERRY_REDIS_URL=", "FERRY_DATABASE_URL="+databaseFor(t, sp.DataDir))
	cmd.Stdout, cmd.Stderr = sp.stderr, sp.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sp.Pid = cmd.Process.Pid
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ferry serve output:\n%s", sp.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(sp.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return sp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry serve did not answer /healthz: %v\n%s", err, sp.stderr.String())
		}
		time.Sleep(100 * time.Millisecond) // polling for readiness, not waiting for an effect
	}
}

func (sp *serveProcess) login(t *testing.T, email, password string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: sp.URL, http: &http.Client{Jar: jar}}
	status, body := c.post("/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if status != 200 {
		t.Fatalf("login %s: status %d: %s", email, status, body)
	}
	var out struct{ CSRFToken string }
	json.Unmarshal(body, &out)
	c.csrf = out.CSRFToken
	return c
}

// agentCmd runs `ferry agent ARGS…` as its own process.
func agentCmd(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"agent"}, args...)...).CombinedOutput()
	return string(out), err
}

// signToken signs claims with the server's own key (read from its data
// directory), to make tokens the UI would never issue: expired ones and
// ones naming another tenant's token.
func signToken(t *testing.T, sp *serveProcess, c agentapi.Claims) string {
	t.Helper()
	key, err := secrets.LoadOrCreateKey(filepath.Join(sp.DataDir, "keys", "hmac.key"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := agentapi.SignRegistrationToken(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func claimsOf(t *testing.T, token string) agentapi.Claims {
	t.Helper()
	p, _, _ := strings.Cut(strings.TrimPrefix(token, "frt_"), ".")
	b, err := base64URL(p)
	if err != nil {
		t.Fatal(err)
	}
	var c agentapi.Claims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

const createToken = `mutation($in: CreateRegistrationTokenInput!) {
  createRegistrationToken(input: $in) { token installCommand registrationToken { id name maxUses uses expiresAt } } }`

// TestDiscoveryEndToEnd runs `ferry serve` and the agent as separate
// processes: registration with tokens made through GraphQL (and refusals
// of forged, expired, exhausted, revoked and other-tenant tokens), an
// inventory pass that shows up as a host, revocation of an agent, file
// uploads with bad rows, and tenant isolation of all of it.
func TestDiscoveryEndToEnd(t *testing.T) {
	bin := mustBuildFerry(t)
	sp := startServe(t, bin)
	admin := sp.login(t, "admin@example.com", adminPassword)
	admin.mustGQL(`mutation { createUser(input: {email: "alice@a.example", role: consultant}, password: "alice-password-1") { id } }`, nil)
	admin.mustGQL(`mutation { createUser(input: {email: "vera@a.example", role: viewer}, password: "vera-password-1") { id } }`, nil)
	admin.mustGQL(`mutation { createTenant(input: {name: "Bank B", slug: "bank-b"}, ownerEmail: "bob@b.example", ownerPassword: "bob-password-12") { tenant { id } } }`, nil)
	alice := sp.login(t, "alice@a.example", "alice-password-1")
	bob := sp.login(t, "bob@b.example", "bob-password-12")

	// Tokens: consultants may not make them; admins get the token once
	// with the exact install command.
	if r := alice.gql(createToken, map[string]any{"in": map[string]any{"name": "x"}}); r.code() != "FORBIDDEN" {
		t.Fatalf("a consultant created a registration token: %s", r.raw)
	}
	for _, in := range []map[string]any{{"name": ""}, {"name": "x", "maxUses": 0}, {"name": "x", "expiresIn": -5}} {
		if r := admin.gql(createToken, map[string]any{"in": in}); r.code() != "INVALID" {
			t.Fatalf("token %v: %s", in, r.raw)
		}
	}
	d := admin.mustGQL(createToken, map[string]any{"in": map[string]any{"name": "estate A", "maxUses": 1, "expiresIn": 3600}})
	token := dig(d, "createRegistrationToken", "token").(string)
	if got, want := dig(d, "createRegistrationToken", "installCommand"), "ferry agent register --server "+sp.URL+" --token "+token; got != want {
		t.Fatalf("install command %q, want %q", got, want)
	}
	list := admin.mustGQL(`{ registrationTokens { edges { node { tokenID name uses maxUses } } } }`, nil)
	if raw, _ := json.Marshal(list); strings.Contains(string(raw), token) {
		t.Fatalf("the token itself can be read back: %s", raw)
	}

	state := t.TempDir()
	out, err := agentCmd(t, bin, "register", "--server", sp.URL, "--token", token, "--state", state)
	if err != nil || !strings.Contains(out, "registered as agent") {
		t.Fatalf("register: %v\n%s", err, out)
	}
	refused := func(name, token, want string) {
		t.Helper()
		out, err := agentCmd(t, bin, "register", "--server", sp.URL, "--token", token, "--state", t.TempDir())
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("%s token: err %v, output %q; want it refused with %q", name, err, out, want)
		}
	}
	refused("exhausted", token, "no uses left")
	c := claimsOf(t, token)
	refused("forged", token[:len(token)-4]+"AAAA", "signature is invalid")
	refused("malformed", "hello", "malformed")
	expired := c
	expired.ExpiresAt = time.Now().Add(-time.Minute).Unix()
	refused("expired", signToken(t, sp, expired), "has expired")

	dr := admin.mustGQL(createToken, map[string]any{"in": map[string]any{"name": "to revoke", "maxUses": 5}})
	revokedToken := dig(dr, "createRegistrationToken", "token").(string)
	admin.mustGQL(`mutation($id: ID!) { revokeRegistrationToken(id: $id) { revokedAt } }`, map[string]any{"id": dig(dr, "createRegistrationToken", "registrationToken", "id")})
	refused("revoked", revokedToken, "revoked")

	// Tenant B's token, presented as tenant A's, is unknown in A.
	db := bob.mustGQL(createToken, map[string]any{"in": map[string]any{"name": "estate B", "maxUses": 2}})
	tokenB := dig(db, "createRegistrationToken", "token").(string)
	cross := claimsOf(t, tokenB)
	cross.TenantID = c.TenantID
	refused("other tenant's", signToken(t, sp, cross), "revoked or unknown")
	stateB := t.TempDir()
	if out, err := agentCmd(t, bin, "register", "--server", sp.URL, "--token", tokenB, "--state", stateB); err != nil {
		t.Fatalf("register in tenant B: %v\n%s", err, out)
	}

	// `ferry agent inventory` needs no server and shows what would be sent.
	out, err = agentCmd(t, bin, "inventory")
	if err != nil {
		t.Fatalf("inventory: %v\n%s", err, out)
	}
	var inv struct {
		Hostname string `json:"hostname"`
	}
	hostname, _ := os.Hostname()
	if err := json.Unmarshal([]byte(out), &inv); err != nil || inv.Hostname != hostname {
		t.Fatalf("inventory JSON: %v, hostname %q want %q", err, inv.Hostname, hostname)
	}

	// One pass of the agent: the host appears with its disks. (Its connections
	// are checked in the agentstore tests: every socket a test can open here
	// is this host talking to itself, which is no dependency.)
	if out, err := agentCmd(t, bin, "run", "--once", "--state", state); err != nil {
		t.Fatalf("agent run --once: %v\n%s", err, out)
	}
	const agentsQ = `{ agents(first: 10) { totalCount edges { node { id hostname version lastHeartbeatAt revokedAt
	  host { name source disks { name sizeBytes } outgoing(first: 100) { edges { node { port dstAddress dst { name } } } } incoming(first: 1) { totalCount } } } } } }`
	ag := alice.mustGQL(agentsQ, nil)
	if n := dig(ag, "agents", "totalCount"); n != float64(1) {
		t.Fatalf("tenant A sees %v agents: %v", n, ag)
	}
	node := dig(ag, "agents", "edges", 0, "node")
	if dig(node, "hostname") != hostname || dig(node, "lastHeartbeatAt") == nil || dig(node, "host", "name") != hostname || dig(node, "host", "source") != "agent" {
		t.Fatalf("agent: %v", node)
	}
	if disks, _ := dig(node, "host", "disks").([]any); len(disks) == 0 {
		t.Fatalf("the agent's host has no disks: %v", node)
	}
	hosts := alice.mustGQL(`{ hosts(where: {name: "`+hostname+`"}) { totalCount } }`, nil)
	if dig(hosts, "hosts", "totalCount") != float64(1) {
		t.Fatalf("hosts named %s: %v", hostname, hosts)
	}

	// Revoking the agent: its credential is refused (the server's cache
	// holds an answer for a few seconds, so poll until it is).
	if r := alice.gql(`mutation($id: ID!) { revokeAgent(id: $id) { id } }`, map[string]any{"id": dig(node, "id")}); r.code() != "FORBIDDEN" {
		t.Fatalf("a consultant revoked an agent: %s", r.raw)
	}
	if r := bob.gql(`mutation($id: ID!) { revokeAgent(id: $id) { id } }`, map[string]any{"id": dig(node, "id")}); r.code() != "NOT_FOUND" {
		t.Fatalf("tenant B revoked tenant A's agent: %s", r.raw)
	}
	admin.mustGQL(`mutation($id: ID!) { revokeAgent(id: $id) { revokedAt } }`, map[string]any{"id": dig(node, "id")})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := agentCmd(t, bin, "run", "--once", "--state", state)
		if err != nil {
			if !strings.Contains(out, "unknown or revoked") {
				t.Fatalf("revoked agent refused without saying why: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked agent is still accepted after 30 s")
		}
	}

	// Uploads through /api/v1/imports.
	td := "../../discovery/importer/testdata/"
	status, body := upload(t, alice, "hosts.csv", td+"hosts.csv", "connections.csv", td+"connections.csv", "web01.ss.txt", td+"web01.ss.txt")
	if status != 200 {
		t.Fatalf("upload: %d %s", status, body)
	}
	var res struct {
		ImportRun struct {
			ID     int
			Status string
		}
		Rows, HostsCreated, HostsUpdated, Connections int
		Errors                                        []struct {
			File, Column, Message string
			Row                   int
		}
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.ImportRun.Status != "partial" || res.HostsCreated != 2 || res.Rows != 20 || len(res.Errors) != 15 {
		t.Fatalf("upload result: %s", body)
	}
	if e := res.Errors[0]; e.File != "hosts.csv" || e.Row != 4 || e.Column != "ip" || !strings.Contains(e.Message, "10.1.0.300") {
		t.Fatalf("first error: %+v", e)
	}
	runs := alice.mustGQL(`{ importRuns { totalCount edges { node { id kind filename status rowsTotal hostsCreated errors actor } } } }`, nil)
	run := dig(runs, "importRuns", "edges", 0, "node")
	if dig(runs, "importRuns", "totalCount") != float64(1) || dig(run, "kind") != "csv+ss" || dig(run, "actor") != "alice@a.example" ||
		dig(run, "errors", 0, "column") != "ip" || dig(run, "errors", 0, "row") != float64(4) {
		t.Fatalf("import run: %v", runs)
	}

	// RVTools sheets, uploaded with an API token instead of a session.
	script := &client{t: t, base: sp.URL, http: &http.Client{}}
	script.token = dig(alice.mustGQL(`mutation { createAPIToken(name: "ci") { secret } }`, nil), "createAPIToken", "secret").(string)
	rv := td + "rvtools/"
	status, body = upload(t, script, "RVTools_tabvInfo.csv", rv+"RVTools_tabvInfo.csv", "RVTools_tabvDisk.csv", rv+"RVTools_tabvDisk.csv",
		"RVTools_tabvPartition.csv", rv+"RVTools_tabvPartition.csv", "RVTools_tabvNetwork.csv", rv+"RVTools_tabvNetwork.csv")
	if status != 200 || !strings.Contains(string(body), `"importRun"`) {
		t.Fatalf("rvtools upload with an API token: %d %s", status, body)
	}
	countHosts := func(c *client) float64 {
		return dig(c.mustGQL(`{ hosts { totalCount } }`, nil), "hosts", "totalCount").(float64)
	}
	countRuns := func(c *client) float64 {
		return dig(c.mustGQL(`{ importRuns { totalCount } }`, nil), "importRuns", "totalCount").(float64)
	}
	hostsBefore, runsBefore := countHosts(alice), countRuns(alice)

	// Malformed uploads are refused whole: 400 with the reason, nothing stored.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.bin"), []byte("\x00\x01\x02 this is no estate file\n"), 0o600)
	for name, tc := range map[string]struct {
		do   func() (int, []byte)
		want string
	}{
		"unknown format": {func() (int, []byte) {
			return upload(t, alice, "hosts.csv", td+"hosts.csv", "notes.bin", filepath.Join(dir, "notes.bin"))
		}, "notes.bin"},
		"not multipart": {func() (int, []byte) { return alice.post("/api/v1/imports", `{"file":"x"}`) }, "multipart/form-data"},
		"no files": {func() (int, []byte) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			mw.WriteField("comment", "hello")
			mw.Close()
			return rawUpload(t, alice, mw.FormDataContentType(), &b)
		}, "no file parts"},
		"truncated multipart": {func() (int, []byte) {
			return rawUpload(t, alice, "multipart/form-data; boundary=XYZ", strings.NewReader("--XYZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.csv\"\r\n\r\nid,name,ip,os\nh1,web9,10.0.0.1,Linux\nh2,web10,10.0.0.2,Linux\n"))
		}, "malformed multipart"},
	} {
		status, body := tc.do()
		if status != 400 || !strings.Contains(string(body), tc.want) {
			t.Fatalf("%s: %d %s; want 400 mentioning %q", name, status, body, tc.want)
		}
	}
	if h, r := countHosts(alice), countRuns(alice); h != hostsBefore || r != runsBefore {
		t.Fatalf("refused uploads stored something: hosts %v→%v, runs %v→%v", hostsBefore, h, runsBefore, r)
	}
	// Roles and CSRF.
	vera := sp.login(t, "vera@a.example", "vera-password-1")
	if status, body := upload(t, vera, "hosts.csv", td+"hosts.csv"); status != 403 || !strings.Contains(string(body), "consultant") {
		t.Fatalf("viewer upload: %d %s", status, body)
	}
	noCSRF := *alice
	noCSRF.csrf = ""
	if status, body := upload(t, &noCSRF, "hosts.csv", td+"hosts.csv"); status != 403 || !strings.Contains(string(body), "X-CSRF-Token") {
		t.Fatalf("upload without CSRF header: %d %s", status, body)
	}
	anon := &client{t: t, base: sp.URL, http: &http.Client{}}
	if status, _ := upload(t, anon, "hosts.csv", td+"hosts.csv"); status != 401 {
		t.Fatalf("anonymous upload: %d", status)
	}

	// Tenant isolation: B sees only its own agent, none of A's runs or tokens.
	bv := bob.mustGQL(`{ agents { totalCount edges { node { hostname } } } importRuns { totalCount } registrationTokens { totalCount edges { node { name } } } hosts { totalCount } }`, nil)
	if dig(bv, "agents", "totalCount") != float64(1) || dig(bv, "importRuns", "totalCount") != float64(0) ||
		dig(bv, "registrationTokens", "totalCount") != float64(1) || dig(bv, "registrationTokens", "edges", 0, "node", "name") != "estate B" ||
		dig(bv, "hosts", "totalCount") != float64(0) {
		t.Fatalf("tenant B sees: %v", bv)
	}
	if ag := alice.mustGQL(`{ agents { totalCount } }`, nil); dig(ag, "agents", "totalCount") != float64(1) {
		t.Fatalf("tenant A sees B's agent: %v", ag)
	}
	// Secrets never reach the log.
	if strings.Contains(sp.stderr.String(), token) || strings.Contains(sp.stderr.String(), "fra_") {
		t.Fatalf("a token or credential reached the server log")
	}
}

// upload posts files, given as name, path pairs, in that order.
func upload(t testing.TB, c *client, files ...string) (int, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		name, path := files[i], files[i+1]
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreateFormFile("files", name)
		w.Write(data)
	}
	mw.Close()
	return rawUpload(t, c, mw.FormDataContentType(), &b)
}

func rawUpload(t testing.TB, c *client, contentType string, body io.Reader) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/api/v1/imports", body)
	req.Header.Set("Content-Type", contentType)
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func base64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// TestUploadCaps: a file over the importer's byte or row cap refuses the
// whole upload, names the file, and stores nothing; a good upload is
// audited like a mutation.
func TestUploadCaps(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	td := "../../discovery/importer/testdata/"
	for name, tc := range map[string]struct {
		limits importer.Limits
		want   string
	}{
		"rows":  {importer.Limits{MaxRows: 2}, "connections.csv: file exceeds the import cap: more than 2 rows"},
		"bytes": {importer.Limits{MaxBytes: 200}, "exceeds the import cap"},
	} {
		app.SetUploadLimits(t.Cleanup, tc.limits)
		status, body := upload(t, admin, "connections.csv", td+"connections.csv", "hosts.csv", td+"hosts.csv")
		if status != 400 || !strings.Contains(string(body), tc.want) || !strings.Contains(string(body), "nothing was imported") {
			t.Fatalf("%s cap: %d %s", name, status, body)
		}
	}
	d := admin.mustGQL(`{ hosts { totalCount } importRuns { totalCount } }`, nil)
	if dig(d, "hosts", "totalCount") != float64(0) || dig(d, "importRuns", "totalCount") != float64(0) {
		t.Fatalf("refused uploads stored something: %v", d)
	}
	app.SetUploadLimits(t.Cleanup, importer.Limits{})
	if status, body := upload(t, admin, "hosts.csv", td+"hosts.csv"); status != 200 {
		t.Fatalf("upload: %d %s", status, body)
	}
	a := admin.mustGQL(`{ auditEvents(where: {action: "importFiles"}) { edges { node { actor objectType details } } } }`, nil)
	if dig(a, "auditEvents", "edges", 0, "node", "actor") != "admin@example.com" || dig(a, "auditEvents", "edges", 0, "node", "details", "files", 0) != "hosts.csv" {
		t.Fatalf("audit of the upload: %v", a)
	}
}

// TestInstallCommandServerURL: without --public-url the install command
// names the origin the admin's browser used.
func TestInstallCommandServerURL(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	b, _ := json.Marshal(map[string]any{"query": createToken, "variables": map[string]any{"in": map[string]any{"name": "lab"}}})
	req, _ := http.NewRequest("POST", ts.URL+"/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", admin.csrf)
	req.Header.Set("Origin", "https://ferry.bank.example:8443")
	resp, err := admin.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			CreateRegistrationToken struct{ Token, InstallCommand string }
		}
	}
	json.NewDecoder(resp.Body).Decode(&out)
	got := out.Data.CreateRegistrationToken
	if want := "ferry agent register --server https://ferry.bank.example:8443 --token " + got.Token; got.Token == "" || got.InstallCommand != want {
		t.Fatalf("install command %q, want %q", got.InstallCommand, want)
	}
}
