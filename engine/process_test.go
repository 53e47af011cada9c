package engine

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/throttle"
)

// The fault tests run the gateway and the agent as separate processes: the
// test binary re-executes itself with FERRY_TEST_ROLE set, so that SIGKILL
// hits a real process with real sockets and files.
func TestMain(m *testing.M) {
	switch os.Getenv("FERRY_TEST_ROLE") {
	case "gateway":
		os.Exit(roleGateway())
	case "agent":
		os.Exit(roleAgent())
	}
	os.Exit(m.Run())
}

func roleGateway() int {
	dir, addr := os.Getenv("FERRY_TEST_DATA"), os.Getenv("FERRY_TEST_LISTEN")
	g, err := NewGateway(GatewayOptions{Dir: dir, Create: true, Grow: true, CheckpointBytes: 512 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cert, _, err := LoadOrCreateCertificate(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("READY")
	srv := &http.Server{Handler: g, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	err = srv.ServeTLS(ln, "", "")
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// agentSpec is the part of SyncOptions a child agent gets through its
// environment.
type agentSpec struct {
	Source, DiskID, Gateway, Credential, Fingerprint, StateDir string
	BlockSize                                                  int
	Rate                                                       float64
	RetryFor                                                   time.Duration
	BatchBytes                                                 int64
}

func roleAgent() int {
	var spec agentSpec
	if err := json.Unmarshal([]byte(os.Getenv("FERRY_TEST_SYNC")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opt := SyncOptions{Source: spec.Source, DiskID: spec.DiskID, Gateway: spec.Gateway, Credential: spec.Credential,
		Fingerprint: spec.Fingerprint, StateDir: spec.StateDir, BlockSize: spec.BlockSize, Rate: throttle.Rate(spec.Rate),
		RetryFor: spec.RetryFor, BatchBytes: spec.BatchBytes}
	opt.Logf = func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	s, err := NewSyncer(opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p, err := s.Run(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "sync failed:", err)
		return 1
	}
	fmt.Printf("DONE sent=%d resent=%d patched=%d\n", p.BlocksSent, p.BlocksResent, p.BlocksPatched)
	return 0
}

// child is a re-executed test binary.
type child struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

// lockedBuffer collects a child's stdout and stderr, written from two goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) { l.Write([]byte(s)) }

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out := &lockedBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: out}
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			t.Logf("[pid %d] %s", cmd.Process.Pid, line)
			out.WriteString(line + "\n")
			if line == "READY" {
				ready <- struct{}{}
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if strings.Contains(strings.Join(env, " "), "FERRY_TEST_ROLE=gateway") {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatalf("gateway did not start: %s", out)
		}
	}
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
}

func (c *child) wait(t *testing.T) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("child did not finish: %s", c.out)
		return nil
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

// checkpointOffset reads the gateway's durable checkpoint from its data dir.
func checkpointOffset(dir, disk string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, "state", disk+".checkpoint"))
	if err != nil {
		return -1
	}
	var c checkpoint
	if json.Unmarshal(b, &c) != nil || c.Verified {
		return -1
	}
	return c.Offset
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func agentEnv(t *testing.T, opt SyncOptions) string {
	rate := float64(opt.Rate)
	if opt.Rate.IsUnlimited() {
		rate = 0
	}
	b, err := json.Marshal(agentSpec{Source: opt.Source, DiskID: opt.DiskID, Gateway: opt.Gateway, Credential: opt.Credential,
		Fingerprint: opt.Fingerprint, StateDir: opt.StateDir, BlockSize: opt.BlockSize, Rate: rate,
		RetryFor: opt.RetryFor, BatchBytes: opt.BatchBytes})
	if err != nil {
		t.Fatal(err)
	}
	return "FERRY_TEST_SYNC=" + string(b)
}

func TestKillGatewayMidTransfer(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 24<<20, 21)
	gdir := filepath.Join(dir, "gw")
	os.MkdirAll(gdir, 0o700)
	addr := freeAddr(t)
	genv := []string{"FERRY_TEST_ROLE=gateway", "FERRY_TEST_DATA=" + gdir, "FERRY_TEST_LISTEN=" + addr}
	g1 := startChild(t, genv...)

	// Same key and certificate as the child, read from its data dir.
	gw, err := NewGateway(GatewayOptions{Dir: gdir})
	if err != nil {
		t.Fatal(err)
	}
	_, fp, err := LoadOrCreateCertificate(gdir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := gw.IssueCredential("k1", time.Hour)
	opt := SyncOptions{Source: src, DiskID: "k1", Gateway: "https://" + addr, Credential: cred, Fingerprint: fp,
		BlockSize: 64 << 10, StateDir: filepath.Join(dir, "state"), Rate: 6 << 20, RetryFor: time.Minute, BatchBytes: 2 << 20}
	agent := startChild(t, "FERRY_TEST_ROLE=agent", agentEnv(t, opt))

	pollUntil(t, "a checkpoint past the start", func() bool { return checkpointOffset(gdir, "k1") > 0 })
	g1.kill(t)
	at := checkpointOffset(gdir, "k1")
	startChild(t, genv...)
	if err := agent.wait(t); err != nil {
		t.Fatalf("agent failed after the gateway restarted: %v\n%s", err, agent.out)
	}
	if !strings.Contains(agent.out.String(), "resuming at offset") {
		t.Errorf("agent did not resume from a checkpoint (killed at checkpoint %d):\n%s", at, agent.out)
	}
	sameContent(t, src, filepath.Join(gdir, "disks", "k1.img"))
}

func TestKillAgentMidTransfer(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 24<<20, 22)
	g := startGateway(t, GatewayOptions{Create: true, CheckpointBytes: 512 << 10})
	opt := g.syncOptions(t, src, "k2")
	opt.StateDir = filepath.Join(dir, "state")
	opt.BatchBytes = 2 << 20
	slow := opt
	slow.Rate = 6 << 20
	agent := startChild(t, "FERRY_TEST_ROLE=agent", agentEnv(t, slow))
	pollUntil(t, "a checkpoint past the start", func() bool { return checkpointOffset(g.Dir, "k2") > 0 })
	agent.kill(t)
	at := checkpointOffset(g.Dir, "k2")

	again := startChild(t, "FERRY_TEST_ROLE=agent", agentEnv(t, opt))
	if err := again.wait(t); err != nil {
		t.Fatalf("restarted agent failed: %v\n%s", err, again.out)
	}
	out := again.out.String()
	i := strings.Index(out, "resuming at offset ")
	if i < 0 {
		t.Fatalf("restarted agent did not resume (killed at checkpoint %d):\n%s", at, out)
	}
	var resumed int64
	fmt.Sscan(out[i+len("resuming at offset "):], &resumed)
	if resumed < at || resumed == 0 {
		t.Errorf("resumed at %d, the checkpoint was %d", resumed, at)
	}
	sameContent(t, src, g.diskPath("k2"))
}

func TestCredentialRejected(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 2<<20, 4)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	g := startGateway(t, GatewayOptions{Create: true, Now: func() time.Time { return now }})
	other := startGateway(t, GatewayOptions{Create: true})

	expired, _ := g.IssueCredential("c1", time.Minute)
	forged, _ := other.IssueCredential("c1", time.Hour)
	otherDisk, _ := g.IssueCredential("c2", time.Hour)
	now = now.Add(2 * time.Minute)
	tests := []struct{ name, cred, want string }{
		{"expired", expired, "expired at 2026-11-23T12:01:00Z"},
		{"other key", forged, "signature does not verify"},
		{"other disk", otherDisk, `for disk "c2", not "c1"`},
		{"garbage", "hello", "not a Ferry sync credential"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := g.syncOptions(t, src, "c1")
			opt.Credential = tc.cred
			s, _ := NewSyncer(opt)
			_, err := s.Run(context.Background())
			var ge *GatewayError
			if !errors.As(err, &ge) || ge.Code != CodeUnauthorized || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an unauthorized error containing %q", err, tc.want)
			}
			if _, err := os.Stat(g.diskPath("c1")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a rejected sync created or touched the target: %v", err)
			}
		})
	}
}

func TestWrongFingerprint(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 1<<20, 4)
	g := startGateway(t, GatewayOptions{Create: true})
	other := startGateway(t, GatewayOptions{})
	opt := g.syncOptions(t, src, "f1")
	opt.Fingerprint = other.Fingerprint
	opt.RetryFor = time.Minute // must not be retried as if transient
	s, _ := NewSyncer(opt)
	_, err := s.Run(context.Background())
	if !errors.Is(err, ErrFingerprint) || !strings.Contains(err.Error(), "pinned "+other.Fingerprint) {
		t.Fatalf("got %v; want a pinned-fingerprint error", err)
	}
	if _, err := os.Stat(g.diskPath("f1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target exists after the agent refused the gateway: %v", err)
	}
	if _, err := PinnedTLSConfig("abc"); err == nil {
		t.Error("a 3-digit fingerprint was accepted")
	}
}

func TestTargetTooSmallThenGrown(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 8<<20, 8)
	gdir := t.TempDir()
	os.MkdirAll(filepath.Join(gdir, "disks"), 0o700)
	target := filepath.Join(gdir, "disks", "t1.img")
	makeImage(t, target, 6<<20, 9)
	before := sha256Prefix(t, target, 6<<20)

	g := startGateway(t, GatewayOptions{Dir: gdir})
	s, _ := NewSyncer(g.syncOptions(t, src, "t1"))
	_, err := s.Run(context.Background())
	var ge *GatewayError
	if !errors.As(err, &ge) || ge.Code != CodeTooSmall || !strings.Contains(err.Error(), "target disk t1 is 6291456 bytes, the source is 8388608 bytes") {
		t.Fatalf("got %v; want a target-too-small error", err)
	}
	if got := sha256Prefix(t, target, 1<<30); got != before || fileSize(t, target) != 6<<20 {
		t.Fatal("a refused sync changed the target")
	}
	g.srv.Close()

	// A gateway allowed to grow the target syncs it (the old content, unknown
	// to this gateway, is learned by hashing, then overwritten).
	g2 := startGateway(t, GatewayOptions{Dir: gdir, Grow: true})
	runSync(t, g2.syncOptions(t, src, "t1"))
	sameContent(t, src, target)
}

func TestSourceGrew(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 4<<20+100, 12)
	g := startGateway(t, GatewayOptions{Create: true, Grow: true})
	opt := g.syncOptions(t, src, "g1")
	opt.StateDir = filepath.Join(dir, "state")
	runSync(t, opt)
	// The source grows (a partial last block fills up, new blocks appear).
	f, _ := os.OpenFile(src, os.O_RDWR, 0)
	f.WriteAt([]byte(strings.Repeat("grown!", 200000)), 4<<20)
	f.Close()
	p := runSync(t, opt)
	sameContent(t, src, g.diskPath("g1"))
	if fileSize(t, g.diskPath("g1")) != fileSize(t, src) {
		t.Errorf("target is %d bytes, source %d", fileSize(t, g.diskPath("g1")), fileSize(t, src))
	}
	if p.BlocksSent == 0 {
		t.Error("nothing sent for a grown source")
	}
}

func TestSourceDisappearsMidSync(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 64<<20, 13) // larger than the scan window, so the cut lands mid-read
	orig, _ := os.ReadFile(src)
	g := startGateway(t, GatewayOptions{Create: true})
	opt := g.syncOptions(t, src, "v1")
	opt.StateDir = filepath.Join(dir, "state")
	opt.ProgressEvery = time.Nanosecond
	cut := false
	opt.Progress = func(p Progress) {
		if !cut && p.Done > 1<<20 {
			cut = true
			os.Truncate(src, 2<<20) // the device goes away under the agent
		}
	}
	s, _ := NewSyncer(opt)
	_, err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "shrank or disappeared") {
		t.Fatalf("got %v; want a clear source-vanished error", err)
	}
	// The source comes back; the next run repairs the target.
	os.WriteFile(src, orig, 0o600)
	opt.Progress = nil
	runSync(t, opt)
	sameContent(t, src, g.diskPath("v1"))
}

func TestTargetDisappears(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 4<<20, 14)
	gdir := t.TempDir()
	os.MkdirAll(filepath.Join(gdir, "disks"), 0o700)
	target := filepath.Join(gdir, "disks", "x1.img")
	os.WriteFile(target, nil, 0o600)
	os.Truncate(target, 4<<20)
	g := startGateway(t, GatewayOptions{Dir: gdir})
	opt := g.syncOptions(t, src, "x1")
	opt.StateDir = filepath.Join(dir, "state")
	runSync(t, opt)
	os.Remove(target)
	s, _ := NewSyncer(opt)
	_, err := s.Run(context.Background())
	var ge *GatewayError
	if !errors.As(err, &ge) || ge.Code != CodeNotFound || !strings.Contains(err.Error(), "target disk x1 does not exist") {
		t.Fatalf("got %v; want a clear not-found error", err)
	}
	// The driver re-creates the disk (empty); the sync learns it and refills it.
	os.WriteFile(target, nil, 0o600)
	os.Truncate(target, 4<<20)
	g.srv.Close()
	g2 := startGateway(t, GatewayOptions{Dir: gdir})
	opt2 := g2.syncOptions(t, src, "x1")
	opt2.StateDir = opt.StateDir
	runSync(t, opt2)
	sameContent(t, src, target)
}

func TestLiveRateChange(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 8<<20, 15)
	g := startGateway(t, GatewayOptions{Create: true})
	opt := g.syncOptions(t, src, "r1")
	paused, _ := throttle.ParseWindows("Daily 00:00-24:00=0", time.UTC)
	opt.Windows = paused
	s, err := NewSyncer(opt)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Run(context.Background()); done <- err }()
	pollUntil(t, "the sync to reach the paused sender", func() bool { return s.Progress().Phase == "scan" })
	select {
	case err := <-done:
		t.Fatalf("a paused sync finished: %v", err)
	default:
	}
	if s.Progress().SentBytes != 0 {
		t.Fatal("bytes went out while paused")
	}
	s.SetWindows(nil) // lifting the windows resumes the same run
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, g.diskPath("r1"))
	_ = strconv.Itoa
}

func TestTargetLargerThanSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 3<<20+5000, 42) // a short last block
	gdir := t.TempDir()
	os.MkdirAll(filepath.Join(gdir, "disks"), 0o700)
	target := filepath.Join(gdir, "disks", "l1.img")
	makeImage(t, target, 8<<20, 43) // a bigger disk holding other data
	g := startGateway(t, GatewayOptions{Dir: gdir, VerifyFull: true})
	runSync(t, g.syncOptions(t, src, "l1"))
	sameContent(t, src, target)
	if fileSize(t, target) != 8<<20 {
		t.Errorf("target was resized to %d", fileSize(t, target))
	}
}

func TestDamagedGatewayState(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 4<<20, 44)
	gdir := t.TempDir()
	g := startGateway(t, GatewayOptions{Dir: gdir, Create: true})
	opt := g.syncOptions(t, src, "m1")
	runSync(t, opt)
	g.srv.Close()
	mpath := filepath.Join(gdir, "state", "m1.manifest")
	b, _ := os.ReadFile(mpath)
	b[50] ^= 0xff
	os.WriteFile(mpath, b, 0o600)
	scribble(t, src, 5, 45)

	g2 := startGateway(t, GatewayOptions{Dir: gdir, Create: true})
	runSync(t, g2.syncOptions(t, src, "m1"))
	sameContent(t, src, g2.diskPath("m1"))
}

// patchedRun prepares a disk synced once (with local state, so that the
// next run patches) and then changed in many scattered 4 KiB sub-blocks.
func patchedRun(t *testing.T, g *testGateway, gw, dir, disk string) (SyncOptions, string) {
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 24<<20, 71)
	opt := g.syncOptions(t, src, disk)
	opt.Gateway = gw
	opt.StateDir = filepath.Join(dir, "state")
	opt.BatchBytes = 1 << 20
	runSync(t, opt)
	writeAt4K(t, src, 1200, 72) // ≈ 4.7 MiB of patches over most blocks
	return opt, src
}

// TestKillAgentDuringPatches: SIGKILL of the agent while it streams patch
// frames; the restarted agent resumes and the target ends equal.
func TestKillAgentDuringPatches(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, GatewayOptions{Create: true, CheckpointBytes: 128 << 10})
	opt, src := patchedRun(t, g, g.URL, dir, "kp1")
	slow := opt
	slow.Rate = 1 << 20
	agent := startChild(t, "FERRY_TEST_ROLE=agent", agentEnv(t, slow))
	pollUntil(t, "a checkpoint inside the patch stream", func() bool { return checkpointOffset(g.Dir, "kp1") > 0 })
	agent.kill(t)
	again := startChild(t, "FERRY_TEST_ROLE=agent", agentEnv(t, opt))
	if err := again.wait(t); err != nil {
		t.Fatalf("restarted agent failed: %v\n%s", err, again.out)
	}
	if out := again.out.String(); !strings.Contains(out, "resuming at offset") || strings.Contains(out, "patched=0") {
		t.Errorf("restarted agent did not resume with patches:\n%s", out)
	}
	sameContent(t, src, g.diskPath("kp1"))
}

// TestKillGatewayDuringPatches: SIGKILL of the gateway while it applies
// patch frames; after its restart the agent resumes and the target ends
// equal (the final proof re-reads everything after a crash).
func TestKillGatewayDuringPatches(t *testing.T) {
	dir := t.TempDir()
	gdir := filepath.Join(dir, "gw")
	os.MkdirAll(gdir, 0o700)
	addr := freeAddr(t)
	genv := []string{"FERRY_TEST_ROLE=gateway", "FERRY_TEST_DATA=" + gdir, "FERRY_TEST_LISTEN=" + addr}
	g1 := startChild(t, genv...)
	gw, err := NewGateway(GatewayOptions{Dir: gdir})
	if err != nil {
		t.Fatal(err)
	}
	_, fp, _ := LoadOrCreateCertificate(gdir, nil)
	tg := &testGateway{Gateway: gw, URL: "https://" + addr, Fingerprint: fp, Dir: gdir}
	opt, src := patchedRun(t, tg, tg.URL, dir, "kp2")
	opt.Rate, opt.RetryFor = 1<<20, time.Minute
	agent := startChild(t, "FERRY_TEST_ROLE=agent", agentEnv(t, opt))
	pollUntil(t, "a checkpoint inside the patch stream", func() bool { return checkpointOffset(gdir, "kp2") > 0 })
	g1.kill(t)
	startChild(t, genv...)
	if err := agent.wait(t); err != nil {
		t.Fatalf("agent failed after the gateway restarted: %v\n%s", err, agent.out)
	}
	if !strings.Contains(agent.out.String(), "resuming at offset") {
		t.Errorf("agent did not resume inside the patch stream:\n%s", agent.out)
	}
	sameContent(t, src, filepath.Join(gdir, "disks", "kp2.img"))
}
