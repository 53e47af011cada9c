package vmtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/vm"
)

// MaybeRelay makes a test binary double as the guest-forward relay: call
// it first in TestMain. When qemu runs "<test binary> vm-relay ADDR" for a
// guest connection, it relays and exits.
func MaybeRelay() {
	if len(os.Args) == 3 && os.Args[1] == "vm-relay" {
		if err := vm.Relay(os.Args[2], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// ControlPlane is a test's stand-in for Ferry's agent endpoint: the test
// image's phone-home unit calls it through a guest forward at .100:8080 of
// the launch network, then tries Egress directly and reports whether it got
// through.
type ControlPlane struct {
	Addr string // host address it listens on
	// EgressHost is the host as the guest would reach it directly: qemu's
	// own address on the launch network (default 10.0.2.2). Set it before
	// the boot.
	EgressHost string
	mu         sync.Mutex
	calls      []string
	egress     string
}

// NewControlPlane listens on 127.0.0.1 until the test ends.
func NewControlPlane(tb testing.TB) *ControlPlane {
	tb.Helper()
	cp := &ControlPlane{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cp.Addr = l.Addr().String()
	_, port, _ := net.SplitHostPort(cp.Addr)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.calls = append(cp.calls, r.Method+" "+r.URL.String())
		switch r.URL.Path {
		case "/phone-home":
			// qemu's own address is the host's loopback unless the
			// network is restricted: the guest tries it directly.
			host := cp.EgressHost
			if host == "" {
				host = "10.0.2.2"
			}
			fmt.Fprintf(w, "egress http://%s:%s/egress", host, port)
		case "/report":
			cp.egress = r.URL.Query().Get("egress")
		case "/egress":
			fmt.Fprint(w, "reached")
		}
	})}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return cp
}

// Forward is the guest forward that brings guest (e.g. "10.0.2.100:8080")
// to this control plane.
func (cp *ControlPlane) Forward(tb testing.TB, guest string) vm.GuestForward {
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return vm.GuestForward{Guest: guest, Command: []string{exe, "vm-relay", cp.Addr}}
}

// Phoned is a health.Agent predicate: true once the guest phoned home.
func (cp *ControlPlane) Phoned(ctx context.Context) (string, bool, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, c := range cp.calls {
		if strings.HasPrefix(c, "GET /phone-home") {
			return c, true, nil
		}
	}
	return "", false, nil
}

// WaitEgress returns what the guest reported of its direct try ("open" or
// "blocked").
func (cp *ControlPlane) WaitEgress(tb testing.TB) string {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		cp.mu.Lock()
		e := cp.egress
		cp.mu.Unlock()
		if e != "" {
			return e
		}
		time.Sleep(200 * time.Millisecond)
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	tb.Fatalf("the guest never reported its egress try; calls %v", cp.calls)
	return ""
}
