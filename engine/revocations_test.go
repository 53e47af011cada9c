package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// feedServer is a control plane's feed over a real socket: it answers from
// a list of events, or not at all while down.
type feedServer struct {
	mu       sync.Mutex
	events   []Revocation
	down     bool
	disabled bool
	page     int
	afters   []string
}

func (f *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer gw-secret" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	if f.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	after, err := ParseRevocationCursor(r.URL.Query().Get("after"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.afters = append(f.afters, r.URL.Query().Get("after"))
	p := RevocationPage{Events: []Revocation{}, Cursor: FormatRevocationCursor(after), TenantDisabled: f.disabled}
	for i := int(after); i < len(f.events) && len(p.Events) < max(f.page, 1); i++ {
		p.Events = append(p.Events, f.events[i])
		p.Cursor = strconv.Itoa(i + 1)
	}
	p.More = p.Cursor != FormatRevocationCursor(int64(len(f.events))) && len(f.events) > 0
	json.NewEncoder(w).Encode(p)
}

// TestRevocationWatch: the hook refuses a revoked subject once the feed
// lists it, says "cannot check" (not unauthorized) before the first
// complete answer and after Silence without one, and recovers when the
// feed answers again.
func TestRevocationWatch(t *testing.T) {
	f := &feedServer{page: 2}
	for i := range 5 {
		f.events = append(f.events, Revocation{Subject: AgentSubject(100 + i), RevokedAt: time.Now()})
	}
	hs := httptest.NewServer(f)
	defer hs.Close()
	w := &RevocationWatch{Endpoint: func() (string, string) { return hs.URL, "gw-secret" }, Silence: 400 * time.Millisecond}
	cred := func(agent int) Credential { return Credential{Disk: "d1", Subject: AgentSubject(agent)} }
	if err := w.Authorize(context.Background(), cred(1)); err == nil || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("before any answer: %v, want cannot check", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	wait := func(what string, cond func() bool) {
		t.Helper()
		end := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond) // polling the watch with a deadline
		}
	}
	wait("the catch-up", func() bool { return w.Authorize(ctx, cred(1)) == nil })
	for i := range 5 {
		if err := w.Authorize(ctx, cred(100+i)); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("revoked agent %d: %v", 100+i, err)
		}
	}
	if err := w.Authorize(ctx, Credential{Disk: "d1"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a credential without a subject: %v", err)
	}
	f.mu.Lock()
	f.events = append(f.events, Revocation{Subject: AgentSubject(1), RevokedAt: time.Now()})
	f.mu.Unlock()
	wait("agent 1's revocation", func() bool { return errors.Is(w.Authorize(ctx, cred(1)), ErrUnauthorized) })

	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	wait("cannot check on silence", func() bool {
		err := w.Authorize(ctx, cred(2))
		return err != nil && !errors.Is(err, ErrUnauthorized) && strings.Contains(err.Error(), "no word")
	})
	if err := w.Authorize(ctx, Credential{Disk: "d1", Subject: ControlPlaneSubject}); err != nil {
		t.Errorf("the control plane reading a session while the feed is cut: %v", err)
	}
	f.mu.Lock()
	f.down, f.disabled = false, true
	f.mu.Unlock()
	wait("the disabled tenant", func() bool { return errors.Is(w.Authorize(ctx, cred(2)), ErrUnauthorized) })
	f.mu.Lock()
	f.disabled = false
	f.mu.Unlock()
	wait("the feed back", func() bool { return w.Authorize(ctx, cred(2)) == nil })
	if err := w.Authorize(ctx, cred(1)); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("after the outage the revoked agent: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.afters[0] != "" || f.afters[len(f.afters)-1] != "6" {
		t.Errorf("cursors sent %v: want from the start to the last event", f.afters)
	}
}

func FuzzRevocationCursor(f *testing.F) {
	for _, s := range []string{"", "0", "1", "137438953472", "-1", "+1", "1e3", "٣", "9223372036854775807", "9223372036854775808", " 1", "01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseRevocationCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cursor") {
				t.Fatalf("%q: error %v does not say it is the cursor", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("%q parsed to %d", s, n)
		}
		back := FormatRevocationCursor(n)
		if m, err := ParseRevocationCursor(back); err != nil || m != n {
			t.Fatalf("%q → %d → %q → %d, %v", s, n, back, m, err)
		}
		if s != "" && strings.TrimLeft(s, "0") != back && !(n == 0 && back == "") {
			t.Fatalf("%q read as %d", s, n)
		}
	})
}
