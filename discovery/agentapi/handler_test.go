package agentapi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
	"github.com/google/go-cmp/cmp"
)

func newServer(t *testing.T, store Store, cfg Config) (*httptest.Server, *Client) {
	t.Helper()
	cfg.Store, cfg.TokenKey = store, testKey
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	srv := httptest.NewServer(NewHandler(cfg))
	t.Cleanup(srv.Close)
	return srv, &Client{Server: srv.URL, HTTP: srv.Client()}
}

func register(t *testing.T, store *memStore, c *Client) RegisterResponse {
	t.Helper()
	store.addToken("rt-ok", "t-1", 100)
	resp, err := c.Register(context.Background(), mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-ok", ExpiresAt: now.Add(time.Hour).Unix()}), HostInfo{Hostname: "web01"})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRegisterRefusals(t *testing.T) {
	store := newMemStore()
	store.addToken("rt-1", "t-1", 1)
	store.addToken("rt-other", "t-2", 5)
	_, c := newServer(t, store, Config{})
	exp := now.Add(time.Hour).Unix()
	forged, _ := SignRegistrationToken([]byte("not-the-server-key!"), Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: exp})
	host := HostInfo{Hostname: "web01"}

	first, err := c.Register(context.Background(), mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: exp}), host)
	if err != nil || first.AgentID == "" || !strings.HasPrefix(first.Credential, "fra_") || first.TenantID != "t-1" {
		t.Fatalf("valid registration: %+v, %v", first, err)
	}
	cases := []struct {
		name  string
		token string
		host  HostInfo
		want  error
		code  string
	}{
		{"exhausted", mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: exp}), host, ErrTokenExhausted, CodeTokenExhausted},
		{"forged", forged, host, ErrTokenForged, CodeTokenForged},
		{"expired", mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: now.Add(-time.Second).Unix()}), host, ErrTokenExpired, CodeTokenExpired},
		{"malformed", "frt_garbage", host, ErrTokenMalformed, CodeTokenMalformed},
		{"other tenant", mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-other", ExpiresAt: exp}), host, ErrTokenRevoked, CodeTokenRevoked},
		{"unknown token id", mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-nope", ExpiresAt: exp}), host, ErrTokenRevoked, CodeTokenRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Register(context.Background(), tc.token, tc.host)
			var e *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Code != tc.code || Retryable(err) {
				t.Fatalf("got %v, want %v (code %s, not retryable)", err, tc.want, tc.code)
			}
		})
	}
	_, err = c.Register(context.Background(), mustSign(t, Claims{TenantID: "t-2", TokenID: "rt-other", ExpiresAt: exp}), HostInfo{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalid {
		t.Fatalf("registration without hostname: %v", err)
	}
}

func TestAuthenticatedEndpoints(t *testing.T) {
	store := newMemStore()
	_, c := newServer(t, store, Config{MaxSamplesPerBatch: 3, MaxBodyBytes: 4096})
	reg := register(t, store, c)
	ctx := context.Background()

	anon := &Client{Server: c.Server, HTTP: c.HTTP}
	if err := anon.UploadInventory(ctx, discovery.Inventory{Hostname: "x"}); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("no credential: %v", err)
	}
	c.Credential = reg.Credential
	if err := c.UploadInventory(ctx, discovery.Inventory{Hostname: "web01"}); err != nil {
		t.Fatal(err)
	}
	b := SamplesBatch{BatchID: "b1", Samples: []discovery.UtilisationSample{{At: now, CPUPercent: 10}}}
	for range 2 { // a retry of the same batch must not double the samples
		if err := c.UploadSamples(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	big := SamplesBatch{BatchID: "b2", Samples: make([]discovery.UtilisationSample, 4)}
	var e *Error
	if err := c.UploadSamples(ctx, big); !errors.As(err, &e) || e.Code != CodeTooLarge || e.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized batch: %v", err)
	}
	huge := discovery.Inventory{Hostname: strings.Repeat("x", 8192)}
	if err := c.UploadInventory(ctx, huge); !errors.As(err, &e) || e.Code != CodeTooLarge {
		t.Fatalf("oversized body: %v", err)
	}
	hb, err := c.Heartbeat(ctx, Heartbeat{AgentVersion: "test"})
	if err != nil || !hb.ServerTime.Equal(now) || hb.IntervalSeconds != 60 {
		t.Fatalf("heartbeat: %+v %v", hb, err)
	}
	invs, samples, beats := store.snapshot(reg.AgentID)
	if invs != 1 || len(samples) != 1 || beats != 1 {
		t.Fatalf("store has %d inventories, %d samples, %d beats; want 1,1,1", invs, len(samples), beats)
	}
	// Revoke: the same credential is refused, and that is not retryable.
	store.mu.Lock()
	store.revoked[reg.AgentID] = true
	store.mu.Unlock()
	if _, err := c.Heartbeat(ctx, Heartbeat{}); !errors.Is(err, ErrUnauthenticated) || Retryable(err) {
		t.Fatalf("revoked credential: %v", err)
	}
	// Raw request with a bad body and an unknown path.
	resp, err := http.Post(c.Server+PathRegister, "application/json", bytes.NewBufferString("{"))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad JSON: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

// countingStore reports each NextCommands call, so the test knows the
// long-poll is being held before it queues a command.
type countingStore struct {
	*memStore
	polls chan struct{}
}

func (s *countingStore) NextCommands(ctx context.Context, a Agent) ([]Command, error) {
	select {
	case s.polls <- struct{}{}:
	default:
	}
	return s.memStore.NextCommands(ctx, a)
}

func TestLongPollDeliversCommand(t *testing.T) {
	store := &countingStore{memStore: newMemStore(), polls: make(chan struct{}, 1)}
	_, c := newServer(t, store, Config{PollInterval: 5 * time.Millisecond})
	reg := register(t, store.memStore, c)
	c.Credential = reg.Credential

	got := make(chan []Command, 1)
	errc := make(chan error, 1)
	go func() {
		cmds, err := c.PollCommands(context.Background(), 20*time.Second)
		errc <- err
		got <- cmds
	}()
	deadline := time.After(10 * time.Second)
	for seen := 0; seen < 3; {
		select {
		case <-store.polls:
			seen++
		case err := <-errc:
			t.Fatalf("poll returned before a command was queued: %v", err)
		case <-deadline:
			t.Fatal("long-poll never reached the store")
		}
	}
	want := Command{ID: "c1", Type: CommandCollectInventory}
	store.push(reg.AgentID, want)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Command{want}, <-got); d != "" {
		t.Fatalf("commands (-want +got):\n%s", d)
	}
	// wait=0 answers at once, empty.
	cmds, err := c.PollCommands(context.Background(), 0)
	if err != nil || len(cmds) != 0 {
		t.Fatalf("empty poll: %v %v", cmds, err)
	}
}

func TestCredentialFileAndRegistration(t *testing.T) {
	store := newMemStore()
	store.addToken("rt-1", "t-1", 5)
	_, c := newServer(t, store, Config{})
	st := State{Dir: filepath.Join(t.TempDir(), "state")}
	tok := mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: now.Add(time.Hour).Unix()})
	id, err := Register(context.Background(), c, st, tok, HostInfo{Hostname: "web01"}, now, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(st.Dir, "credential"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file mode %v, %v", fi.Mode().Perm(), err)
	}
	loaded, cred, err := st.Load()
	if err != nil || loaded != id || !strings.HasPrefix(cred, "fra_") {
		t.Fatalf("load: %+v %q %v", loaded, cred, err)
	}
	if _, err := Register(context.Background(), c, st, tok, HostInfo{Hostname: "web01"}, now, false); err == nil {
		t.Fatal("re-registration over an existing state dir must need --force")
	}
	if err := os.Chmod(filepath.Join(st.Dir, "credential"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Load(); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("world-readable credential accepted: %v", err)
	}
	if _, _, err := (State{Dir: t.TempDir()}).Load(); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("empty state: %v", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 8 * time.Second, Rand: func() float64 { return 0.999999 }}
	lo := Backoff{Base: time.Second, Max: 8 * time.Second, Rand: func() float64 { return 0 }}
	for attempt, ceil := range []time.Duration{1, 2, 4, 8, 8, 8} {
		ceil *= time.Second
		if d := lo.Delay(attempt); d != ceil/2 {
			t.Errorf("attempt %d: low delay %v, want %v", attempt, d, ceil/2)
		}
		if d := b.Delay(attempt); d > ceil || d < ceil*9/10 {
			t.Errorf("attempt %d: high delay %v, want just under %v", attempt, d, ceil)
		}
	}
	calls := 0
	var slept []time.Duration
	err := Retry(context.Background(), lo, 4, func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }, func() error {
		calls++
		return &Error{Status: 503, Code: "http"}
	})
	if calls != 4 || len(slept) != 3 || err == nil {
		t.Fatalf("retry: %d calls, slept %v, err %v", calls, slept, err)
	}
	calls = 0
	_ = Retry(context.Background(), lo, 4, nil, func() error { calls++; return ErrTokenForged })
	if calls != 1 {
		t.Fatalf("non-retryable error retried %d times", calls)
	}
}

func TestSpoolCap(t *testing.T) {
	seq := int64(0)
	sp := &Spool{Dir: t.TempDir(), MaxBytes: 2000, Now: func() time.Time { seq++; return time.Unix(0, seq) }}
	var dropped int
	for i := range 30 {
		d, err := sp.Put(SamplesBatch{BatchID: string(rune('a'+i%26)) + "x", Samples: []discovery.UtilisationSample{{CPUPercent: float64(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
	}
	n, bytes, err := sp.Pending()
	if err != nil || bytes > 2000 || n == 0 || dropped != 30-n {
		t.Fatalf("pending %d batches / %d bytes, dropped %d", n, bytes, dropped)
	}
	var firstCPU float64 = -1
	sent, err := sp.Flush(context.Background(), func(_ context.Context, b SamplesBatch) error {
		if firstCPU < 0 {
			firstCPU = b.Samples[0].CPUPercent
		}
		return nil
	})
	if err != nil || sent != n || firstCPU != float64(30-n) {
		t.Fatalf("flush sent %d (want %d) starting at %v (want the oldest kept, %d): %v", sent, n, firstCPU, 30-n, err)
	}
	if _, err := sp.Put(SamplesBatch{BatchID: "huge", Samples: make([]discovery.UtilisationSample, 100)}); err == nil {
		t.Fatal("a batch bigger than the cap must be refused")
	}
}

// TestRunnerSurvivesServerOutage runs the agent loop against a real HTTP
// server, stops the server, keeps sampling, restarts it on the same
// address and expects every sample to arrive once, in order.
func TestRunnerSurvivesServerOutage(t *testing.T) {
	store := newMemStore()
	store.addToken("rt-1", "t-1", 5)
	h := NewHandler(Config{Store: store, TokenKey: testKey, Now: func() time.Time { return now }})
	srv := httptest.NewServer(h)
	addr := srv.Listener.Addr().String()
	st := State{Dir: t.TempDir()}
	client := &Client{Server: srv.URL}
	id, err := Register(context.Background(), client, st, mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: now.Add(time.Hour).Unix()}), HostInfo{Hostname: "web01"}, now, false)
	if err != nil {
		t.Fatal(err)
	}
	_, cred, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	client = &Client{Server: "http://" + addr, Credential: cred, HTTP: &http.Client{Timeout: 5 * time.Second}}
	clock := now
	n := 0
	r := &Runner{
		Client: client,
		Spool:  &Spool{Dir: st.SpoolDir(), Now: func() time.Time { return clock }},
		Inventory: func(context.Context) (discovery.Inventory, error) {
			return discovery.Inventory{Hostname: "web01", CollectedAt: clock}, nil
		},
		Sample: func() (discovery.UtilisationSample, bool, error) {
			n++
			return discovery.UtilisationSample{At: clock, CPUPercent: float64(n)}, true, nil
		},
		Connections: func() ([]discovery.Connection, error) {
			c := discovery.Connection{LocalAddress: "10.0.0.5", LocalPort: 40000 + n, RemoteAddress: "10.0.0.9", RemotePort: 5432, State: "ESTABLISHED", Process: "java"}
			return []discovery.Connection{c, c, {State: "TIME_WAIT"}}, nil
		},
		BatchSize:      1,
		InventoryEvery: 1000 * time.Hour,
		Now:            func() time.Time { return clock },
		Backoff:        Backoff{Base: time.Minute, Max: time.Hour, Rand: func() float64 { return 0 }},
	}
	ctx := context.Background()
	if err := r.Once(ctx, false); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	for range 3 {
		clock = clock.Add(2 * time.Hour) // past any backoff
		if err := r.Once(ctx, false); err == nil || !Retryable(err) {
			t.Fatalf("with the server down Once must fail retryably, got %v", err)
		}
	}
	// Backing off: no contact is attempted, but the sample is still kept.
	if err := r.Once(ctx, false); err != nil {
		t.Fatalf("during backoff Once must only spool: %v", err)
	}
	if pending, _, _ := r.Spool.Pending(); pending != 4 {
		t.Fatalf("%d batches spooled while down, want 4", pending)
	}

	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s to restart the server: %v", addr, err)
	}
	srv2 := httptest.NewUnstartedServer(h)
	srv2.Listener.Close()
	srv2.Listener = l
	srv2.Start()
	defer srv2.Close()
	clock = clock.Add(24 * time.Hour)
	if err := r.Once(ctx, false); err != nil {
		t.Fatal(err)
	}
	invs, samples, beats := store.snapshot(id.AgentID)
	var cpus []float64
	for _, s := range samples {
		cpus = append(cpus, s.CPUPercent)
	}
	if d := cmp.Diff([]float64{1, 2, 3, 4, 5, 6}, cpus); d != "" {
		t.Fatalf("samples after restart (-want +got):\n%s", d)
	}
	store.mu.Lock()
	var ports []int
	for _, c := range store.conns[id.AgentID] {
		ports = append(ports, c.LocalPort)
	}
	store.mu.Unlock()
	// One distinct established connection per batch, duplicates and
	// TIME_WAIT dropped, none lost while the server was down.
	if d := cmp.Diff([]int{40001, 40002, 40003, 40004, 40005, 40006}, ports); d != "" {
		t.Fatalf("connections (-want +got):\n%s", d)
	}
	if invs != 1 || beats != 2 {
		t.Fatalf("inventories %d (want 1), heartbeats %d (want 2)", invs, beats)
	}
	if pending, _, _ := r.Spool.Pending(); pending != 0 {
		t.Fatalf("%d batches left in the spool", pending)
	}
	r.Handle(Command{ID: "c", Type: CommandCollectInventory})
	if err := r.Once(ctx, false); err != nil {
		t.Fatal(err)
	}
	if invs, _, _ := store.snapshot(id.AgentID); invs != 2 {
		t.Fatalf("collect_inventory command did not re-send the inventory (%d)", invs)
	}
}

func BenchmarkHeartbeatHandler(b *testing.B) {
	store := newMemStore()
	h := NewHandler(Config{Store: store, TokenKey: testKey, Now: func() time.Time { return now }})
	store.addToken("rt", "t-1", 1_000_000)
	var creds []string
	for i := 0; i < 1000; i++ {
		_, cred, _ := store.RegisterAgent(context.Background(), Claims{TenantID: "t-1", TokenID: "rt"}, HostInfo{Hostname: "h"})
		creds = append(creds, cred)
	}
	body := []byte(`{"agent_version":"1.0.0","sent_at":"2026-11-23T10:00:00Z","buffered_batches":0,"buffered_bytes":0}`)
	var i atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, PathHeartbeat, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+creds[i.Add(1)%int64(len(creds))])
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkHeartbeatHTTP sends heartbeats through the real client over
// loopback HTTP from parallel goroutines and reports latency percentiles.
func BenchmarkHeartbeatHTTP(b *testing.B) {
	store := newMemStore()
	store.addToken("rt", "t-1", 1_000_000)
	srv := httptest.NewServer(NewHandler(Config{Store: store, TokenKey: testKey}))
	defer srv.Close()
	var creds []string
	for i := 0; i < 1000; i++ {
		_, cred, _ := store.RegisterAgent(context.Background(), Claims{TenantID: "t-1", TokenID: "rt"}, HostInfo{Hostname: "h"})
		creds = append(creds, cred)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var i atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		c := &Client{Server: srv.URL, HTTP: srv.Client()}
		var mine []time.Duration
		for pb.Next() {
			c.Credential = creds[i.Add(1)%int64(len(creds))]
			start := time.Now()
			if _, err := c.Heartbeat(context.Background(), Heartbeat{AgentVersion: "1"}); err != nil {
				b.Fatal(err)
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// TestRunnerActsOnCommandsBetweenRounds: a command that arrives while the
// runner waits out a one-hour sampling interval is acted on then, not an
// hour later (a sync command waited behind the sampler before), and the
// runner stops when its context ends.
func TestRunnerActsOnCommandsBetweenRounds(t *testing.T) {
	store := &countingStore{memStore: newMemStore(), polls: make(chan struct{}, 1)}
	_, c := newServer(t, store, Config{PollInterval: 5 * time.Millisecond})
	reg := register(t, store.memStore, c)
	c.Credential = reg.Credential
	got := make(chan Command, 4)
	r := &Runner{
		Client: c,
		Spool:  &Spool{Dir: t.TempDir(), Now: func() time.Time { return now }},
		Inventory: func(context.Context) (discovery.Inventory, error) {
			return discovery.Inventory{Hostname: "web01", CollectedAt: now}, nil
		},
		SampleEvery: time.Hour,
		PollWait:    time.Second,
		Now:         func() time.Time { return now },
		OnCommand:   func(c Command) { got <- c },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for seen := 0; seen < 2; { // the runner is long-polling
		select {
		case <-store.polls:
			seen++
		case <-deadline:
			t.Fatal("the runner never long-polled")
		}
	}
	want := Command{ID: "s1", Type: "sync"}
	store.push(reg.AgentID, want)
	select {
	case c := <-got:
		if d := cmp.Diff(want, c); d != "" {
			t.Fatalf("command (-want +got):\n%s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a command queued during the sampling interval was not acted on within 10 s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}
