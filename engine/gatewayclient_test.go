package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The two GatewayClients read the same gateway the same way: the in-process
// one from memory, the remote one over HTTPS with the certificate pinned
// and a credential it issues itself with the gateway's key. Both see when a
// sync opened and when it was proven equal, which is how the control plane
// decides that a pass it asked for is complete.
func TestGatewayClientsSeeTheSession(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	makeImage(t, src, 3<<20, 7)
	var clock time.Time = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	g := startGateway(t, GatewayOptions{Create: true, Now: func() time.Time { return clock }})
	key, err := LoadOrCreateCredentialKey(filepath.Join(g.Dir, "credential.key"))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := NewRemoteGateway(g.URL, g.Fingerprint, key)
	if err != nil {
		t.Fatal(err)
	}
	remote.Now = func() time.Time { return clock }
	clients := map[string]GatewayClient{"local": LocalGateway{g.Gateway}, "remote": remote}

	for name, c := range clients {
		if _, err := c.Session(ctx, "web-vda"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: session of a disk never synced: %v, want os.ErrNotExist", name, err)
		}
	}
	if u, fp := remote.Endpoint(); u != g.URL || fp != g.Fingerprint {
		t.Errorf("remote endpoint %s %s", u, fp)
	}
	if u, fp := (LocalGateway{g.Gateway}).Endpoint(); u != "" || fp != "" {
		t.Errorf("local endpoint %q %q, want the control plane's own", u, fp)
	}

	// The agent syncs with a credential the remote client issued, scoped to
	// its tenant.
	cred, err := remote.IssueCredential("web-vda", AgentSubject(7), "tenant-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	opened := clock
	opt := g.syncOptions(t, src, "web-vda")
	opt.Credential = cred
	runSync(t, opt)
	clock = clock.Add(time.Minute)
	for name, c := range clients {
		s, err := c.Session(ctx, "web-vda")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !s.Verified || s.Offset != 3<<20 || s.Size != 3<<20 || !s.Opened.Equal(opened) || !s.VerifiedAt.Equal(opened) || s.Updated.IsZero() {
			t.Errorf("%s: session after the sync %+v; want verified, the whole disk, opened and verified at %s", name, s, opened)
		}
		// A plain engine sync reads its source live: the session says the
		// last completed sync was not a point in time, and why.
		if c := s.Consistency; c == nil || c.Consistent || !strings.Contains(c.Note, "live read") {
			t.Errorf("%s: consistency of a live read %+v", name, c)
		}
	}
	// The disk is bound to the credential's tenant: another tenant's
	// credential for it is refused, whichever client issued it.
	for name, c := range clients {
		foreign, err := c.IssueCredential("web-vda", AgentSubject(8), "tenant-2", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		o := opt
		o.Credential, o.RetryFor = foreign, time.Second
		s, err := NewSyncer(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "another tenant") {
			t.Errorf("%s: sync with another tenant's credential: %v, want refused", name, err)
		}
	}
	// A second pass opens later; its times move on.
	scribble(t, src, 3, 9)
	runSync(t, opt)
	s, err := remote.Session(ctx, "web-vda")
	if err != nil || !s.Opened.Equal(clock) || !s.VerifiedAt.Equal(clock) {
		t.Errorf("second pass: %+v, %v; want opened and verified at %s", s, err, clock)
	}

	// A gateway that is not the pinned one is refused.
	other := startGateway(t, GatewayOptions{Create: true})
	imposter, err := NewRemoteGateway(other.URL, g.Fingerprint, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imposter.Session(ctx, "web-vda"); !errors.Is(err, ErrFingerprint) {
		t.Errorf("session from a gateway with another certificate: %v, want ErrFingerprint", err)
	}
	// And a client with another key is not let in.
	wrong, _ := NewRemoteGateway(g.URL, g.Fingerprint, CredentialKey("another key of 32 bytes........."))
	var ge *GatewayError
	if _, err := wrong.Session(ctx, "web-vda"); !errors.As(err, &ge) || ge.Code != CodeUnauthorized {
		t.Errorf("session with another key: %v, want unauthorized", err)
	}
	for _, bad := range [][2]string{{"http://127.0.0.1:1", g.Fingerprint}, {g.URL, "abc"}} {
		if _, err := NewRemoteGateway(bad[0], bad[1], key); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewRemoteGateway(%q, %q): %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
}
