package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/throttle"
)

// TestRevocationStopsAStreamInFlight revokes a credential's subject while
// a throttled sync is streaming frames: the stream ends with unauthorized
// (not a retryable error) within the re-check interval, and the same,
// still-unexpired credential is refused afterwards.
func TestRevocationStopsAStreamInFlight(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 16<<20, 11)
	var revoked atomic.Bool
	var checks atomic.Int64
	g := startGateway(t, GatewayOptions{Create: true, AuthorizeEvery: 200 * time.Millisecond,
		Authorize: func(_ context.Context, c Credential) error {
			checks.Add(1)
			if id, ok := c.AgentID(); !ok || id != 7 {
				return fmt.Errorf("%w: credential names no known agent", ErrUnauthorized)
			}
			if revoked.Load() {
				return fmt.Errorf("%w: agent 7 was revoked", ErrUnauthorized)
			}
			return nil
		}})
	cred, err := g.IssueCredentialFor("r1", AgentSubject(7), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	opt := g.syncOptions(t, src, "r1")
	opt.Credential = cred
	opt.Rate = throttle.Rate(1 << 20) // ~8 MiB of data: several seconds of one stream
	opt.ProgressEvery = 50 * time.Millisecond
	streaming := make(chan struct{})
	var once sync.Once
	opt.Progress = func(p Progress) {
		if p.SentBytes > 512<<10 {
			once.Do(func() { close(streaming) })
		}
	}
	s, err := NewSyncer(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	go func() { defer close(finished); _, err := s.Run(ctx); done <- err }()
	t.Cleanup(func() { cancel(); <-finished }) // the client logs through t: it must end with the test
	select {
	case <-streaming:
	case err := <-done:
		t.Fatalf("the sync ended before it was revoked: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the sync never started streaming")
	}
	revoked.Store(true)
	at := time.Now()
	select {
	case err := <-done:
		var ge *GatewayError
		if !errors.As(err, &ge) || ge.Code != CodeUnauthorized || ge.Status != http.StatusUnauthorized {
			t.Fatalf("sync after revocation: %v, want unauthorized from the gateway", err)
		}
		t.Logf("revoked mid-stream: the sync stopped %s later (%d authorize calls)", time.Since(at).Round(time.Millisecond), checks.Load())
	case <-time.After(5 * time.Second):
		t.Fatal("the sync was still running 5 s after its agent was revoked")
	}
	if cp, err := g.Checkpoint("r1"); err != nil || cp.Verified {
		t.Fatalf("checkpoint after the revoked sync: %+v, %v; want an unfinished sync", cp, err)
	}
	req, _ := http.NewRequest("GET", g.URL+"/sync/v1/disks/r1/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked credential afterwards: %d, want 401", resp.StatusCode)
	}
}

// TestAuthorityDownIsRetryable: when the Authorize hook cannot answer, the
// gateway refuses with busy (the agent retries) rather than unauthorized
// (the agent would give up).
func TestAuthorityDownIsRetryable(t *testing.T) {
	g := startGateway(t, GatewayOptions{Create: true, Authorize: func(context.Context, Credential) error {
		return errors.New("database is locked")
	}})
	cred, _ := g.IssueCredentialFor("d1", AgentSubject(1), time.Hour)
	req, _ := http.NewRequest("GET", g.URL+"/sync/v1/disks/d1/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("authority down: %d, want 503 busy", resp.StatusCode)
	}
}

// TestRequireCredentialHidesWhetherADiskExists puts a handler that knows
// which disks exist behind RequireCredential: without a valid credential
// the answer is the same 401 for a disk that exists and one that does not.
func TestRequireCredentialHidesWhetherADiskExists(t *testing.T) {
	g, err := NewGateway(GatewayOptions{Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sync/v1/disks/exists/checkpoint" {
			writeErr(w, http.StatusNotFound, CodeNotFound, "no such disk")
			return
		}
		g.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(g.RequireCredential(inner))
	defer srv.Close()
	other, _ := NewGateway(GatewayOptions{Dir: t.TempDir()})
	forged, _ := other.IssueCredential("exists", time.Hour)
	for _, auth := range []string{"", "Bearer nonsense", "Bearer " + forged} {
		var got []int
		for _, disk := range []string{"exists", "missing"} {
			req, _ := http.NewRequest("GET", srv.URL+"/sync/v1/disks/"+disk+"/checkpoint", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got = append(got, resp.StatusCode)
		}
		if got[0] != http.StatusUnauthorized || got[1] != http.StatusUnauthorized {
			t.Errorf("Authorization %q: existing disk %d, missing disk %d; want 401 for both", auth, got[0], got[1])
		}
	}
	// With a valid credential the inner handler decides (and the gateway
	// does not check the admitted request twice).
	cred, _ := g.IssueCredential("exists", time.Hour)
	req, _ := http.NewRequest("GET", srv.URL+"/sync/v1/disks/exists/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound { // never synced: the gateway's own not-found
		t.Fatalf("valid credential: %d, want the gateway's 404 for a disk never synced", resp.StatusCode)
	}
}
