package agentapi

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/discovery/collect"
)

// TestMain lets the test binary act as the agent in a child process, so
// the agent and the server really are separate processes talking HTTP.
func TestMain(m *testing.M) {
	if mode := os.Getenv("FERRY_TEST_AGENT"); mode != "" {
		if err := childAgent(mode); err != nil {
			fmt.Fprintln(os.Stderr, "agent:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func childAgent(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := State{Dir: os.Getenv("FERRY_TEST_STATE")}
	server := os.Getenv("FERRY_TEST_SERVER")
	switch mode {
	case "register":
		col := &collect.Collector{}
		inv, err := col.Inventory(ctx)
		if err != nil {
			return err
		}
		_, err = Register(ctx, &Client{Server: server}, st, os.Getenv("FERRY_TEST_TOKEN"),
			HostInfo{Hostname: inv.Hostname, MachineID: inv.MachineID, OS: inv.OS.PrettyName, Arch: inv.Arch}, time.Now(), false)
		return err
	case "run-once":
		_, cred, err := st.Load()
		if err != nil {
			return err
		}
		col := &collect.Collector{}
		s := &collect.Sampler{Collector: col}
		if _, _, err := s.Sample(); err != nil {
			return err
		}
		if err := SleepContext(ctx, 200*time.Millisecond); err != nil { // let the counters move
			return err
		}
		r := &Runner{Client: &Client{Server: server, Credential: cred}, Spool: &Spool{Dir: st.SpoolDir()},
			Inventory: col.Inventory, Sample: s.Sample, Version: "test"}
		return r.Once(ctx, true)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func TestAgentProcessRegistersAndUploads(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("needs a Linux /proc")
	}
	store := newMemStore()
	store.addToken("rt-1", "t-1", 1)
	srv := httptest.NewServer(NewHandler(Config{Store: store, TokenKey: testKey}))
	defer srv.Close()
	state := filepath.Join(t.TempDir(), "agent")
	run := func(mode, token string) ([]byte, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FERRY_TEST_AGENT="+mode, "FERRY_TEST_STATE="+state, "FERRY_TEST_SERVER="+srv.URL, "FERRY_TEST_TOKEN="+token)
		return cmd.CombinedOutput()
	}
	tok := mustSign(t, Claims{TenantID: "t-1", TokenID: "rt-1", ExpiresAt: time.Now().Add(time.Hour).Unix()})
	if out, err := run("register", tok); err != nil {
		t.Fatalf("register: %v\n%s", err, out)
	}
	// The token had one use: a second agent is refused.
	other := filepath.Join(t.TempDir(), "other")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_AGENT=register", "FERRY_TEST_STATE="+other, "FERRY_TEST_SERVER="+srv.URL, "FERRY_TEST_TOKEN="+tok)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("second registration with a one-use token succeeded: %s", out)
	}
	if out, err := run("run-once", ""); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.agents) != 1 {
		t.Fatalf("%d agents registered", len(store.agents))
	}
	var agentID string
	for _, a := range store.agents {
		agentID = a.ID
	}
	invs := store.inventories[agentID]
	if len(invs) != 1 || len(store.samples[agentID]) != 1 || store.heartbeats[agentID] != 1 {
		t.Fatalf("uploads: %d inventories, %d samples, %d heartbeats", len(invs), len(store.samples[agentID]), store.heartbeats[agentID])
	}
	host, _ := os.Hostname()
	inv := invs[0]
	if inv.Hostname != host {
		t.Errorf("inventory hostname %q, want %q", inv.Hostname, host)
	}
	// The child read the real /proc: it must see this (parent) process
	// listening on the server's port.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	found := false
	for _, s := range inv.Listening {
		if strconv.Itoa(s.Port) == port {
			found = true
			if s.PID != os.Getpid() {
				t.Errorf("server port %s owned by pid %d, want %d", port, s.PID, os.Getpid())
			}
		}
	}
	if !found {
		t.Errorf("the agent's inventory does not list the server's listening port %s", port)
	}
}
