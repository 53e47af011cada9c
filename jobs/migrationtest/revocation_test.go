package migrationtest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// allocated is how many bytes of the (sparse) file hold data.
func allocated(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestRevokedAgentProcessLosesSyncAccess revokes a real `ferry agent run`
// through GraphQL while it streams its disk at 2 MiB/s: the gateway
// refuses it within 5 s (its sync credential is still signed and valid for
// 24 h), the agent's sync fails as unauthorized, and nothing more lands on
// the target.
func TestRevokedAgentProcessLosesSyncAccess(t *testing.T) {
	const size = 96 << 20
	w := newWorld(t, size, [2]int64{4 << 20, 60 << 20})
	d := w.admin.mustGQL(`mutation($h: [ID!]!) { startMigration(hostIds: $h, rateLimit: "2MiB/s") { id } }`, map[string]any{"h": []string{w.hostID}})
	migID := dig(d, "startMigration", 0, "id").(string)
	var target string
	waitFor(t, "the target disk", 60*time.Second, func() bool {
		m := w.migration(t, w.admin, migID)
		if id, _ := dig(m, "disks", 0, "targetDiskID").(string); id != "" {
			target = filepath.Join(w.data, "cloud", "disks", id+".img")
			_, err := os.Stat(target)
			return err == nil
		}
		return false
	})
	base := allocated(t, target)
	waitFor(t, "the agent's data to land on the target", 60*time.Second, func() bool { return allocated(t, target) > base+(4<<20) })

	a := w.admin.mustGQL(`{ agents(first: 5) { edges { node { id } } } }`, nil)
	agentID := dig(a, "agents", "edges", 0, "node", "id").(string)
	w.admin.mustGQL(`mutation($id: ID!) { revokeAgent(id: $id) { id } }`, map[string]any{"id": agentID})
	revoked := time.Now()
	// The requirement: within 5 s of the revocation the data path refuses.
	waitFor(t, "the gateway to refuse the revoked agent", 5*time.Second, func() bool {
		out := w.serve.out.String()
		return strings.Contains(out, "was revoked") && (strings.Contains(out, "stream stopped") || strings.Contains(out, "refused agent:"))
	})
	t.Logf("the gateway refused the revoked agent %s after the revocation", time.Since(revoked).Round(time.Millisecond))
	waitFor(t, "the agent to report its sync refused", 30*time.Second, func() bool {
		out := w.agent.out.String()
		return strings.Contains(out, "sync failed") && strings.Contains(out, "unauthorized")
	})
	// Nothing more arrives: a stream still running would write ~6 MiB in
	// this window at 2 MiB/s.
	at := allocated(t, target)
	time.Sleep(3 * time.Second) // observing that nothing happens takes a window
	if now := allocated(t, target); now != at {
		t.Fatalf("the target grew from %d to %d bytes after the revoked agent was refused", at, now)
	}
	if m := w.migration(t, w.admin, migID); m["percent"] == float64(100) {
		t.Fatalf("the revoked agent's sync completed: %v", m)
	}
}

// ecsGatewaySync starts a migration to the ECS emulator at 2 MiB/s and
// waits until the agent's data lands on the ECS disk through the remote
// gateway (a real `ferry gateway` the emulator started for the gateway
// instance, registered upward, following the revocation feed). It returns
// the migration, the ECS disk's file and the gateway's console.
func ecsGatewaySync(t *testing.T, w *world) (migID, target string, console func() string) {
	t.Helper()
	dir := t.TempDir()
	ecs := startECSIn(t, w, dir)
	acct := ecs.account(t, w.admin)
	d := w.admin.mustGQL(`mutation($h: [ID!]!, $a: ID) { startMigration(hostIds: $h, cloudAccountId: $a, rateLimit: "2MiB/s") { id } }`,
		map[string]any{"h": []string{w.hostID}, "a": acct})
	migID = dig(d, "startMigration", 0, "id").(string)
	waitFor(t, "the ECS target disk", 120*time.Second, func() bool {
		m := w.migration(t, w.admin, migID)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v %v", m["failureReason"], m["lastError"])
		}
		id, _ := dig(m, "disks", 0, "targetDiskID").(string)
		if id == "" {
			return false
		}
		for _, dk := range ecs.srv.Inventory().Disks {
			if dk.Name == "ferry-"+id {
				p, err := ecs.srv.DiskPath(dk.ID)
				target = p
				return err == nil
			}
		}
		return false
	})
	console = func() string {
		paths, _ := filepath.Glob(filepath.Join(dir, "instances", "*", "console.log"))
		var b strings.Builder
		for _, p := range paths {
			out, _ := os.ReadFile(p)
			b.Write(out)
		}
		return b.String()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the gateway instances' consoles:\n%s", tail(console(), 6000))
		}
	})
	base := allocated(t, target)
	waitFor(t, "the agent's data to land on the ECS disk", 120*time.Second, func() bool { return allocated(t, target) > base+(4<<20) })
	return migID, target, console
}

// TestRevokedAgentLosesSyncAccessOnRemoteGateway is
// TestRevokedAgentProcessLosesSyncAccess on a gateway that is not in the
// control plane's process: the ECS gateway only learns of the revocation
// through the feed it long-polls upward, and still refuses the revoked
// agent (whose credential is signed and valid for 24 h) within 5 s.
func TestRevokedAgentLosesSyncAccessOnRemoteGateway(t *testing.T) {
	const size = 96 << 20
	w := newWorld(t, size, [2]int64{4 << 20, 60 << 20})
	migID, target, console := ecsGatewaySync(t, w)
	if !strings.Contains(console(), "registered at") {
		t.Fatalf("the gateway did not register:\n%s", console())
	}
	a := w.admin.mustGQL(`{ agents(first: 5) { edges { node { id } } } }`, nil)
	agentID := dig(a, "agents", "edges", 0, "node", "id").(string)
	w.admin.mustGQL(`mutation($id: ID!) { revokeAgent(id: $id) { id } }`, map[string]any{"id": agentID})
	revoked := time.Now()
	waitFor(t, "the remote gateway to refuse the revoked agent", 5*time.Second, func() bool {
		out := console()
		return strings.Contains(out, "was revoked") && (strings.Contains(out, "stream stopped") || strings.Contains(out, "refused agent:"))
	})
	t.Logf("the remote gateway refused the revoked agent %s after the revocation", time.Since(revoked).Round(time.Millisecond))
	waitFor(t, "the agent to report its sync refused", 30*time.Second, func() bool {
		out := w.agent.out.String()
		return strings.Contains(out, "sync failed") && strings.Contains(out, "unauthorized")
	})
	at := allocated(t, target)
	time.Sleep(3 * time.Second) // observing that nothing happens takes a window
	if now := allocated(t, target); now > at {
		t.Fatalf("the ECS disk grew from %d to %d bytes after the revoked agent was refused", at, now)
	}
	if m := w.migration(t, w.admin, migID); m["percent"] == float64(100) {
		t.Fatalf("the revoked agent's sync completed: %v", m)
	}
}

// TestRemoteGatewayFailsClosedWithoutTheControlPlane stops `ferry serve`
// while an agent streams into an ECS gateway: with no word from the
// revocation feed the gateway stops vouching for credentials within ~5 s
// and answers busy (not unauthorized: the agent keeps its sync), nothing
// more lands while the control plane is away, and once it is back the sync
// resumes and finishes byte-identical.
func TestRemoteGatewayFailsClosedWithoutTheControlPlane(t *testing.T) {
	const size = 48 << 20
	w := newWorld(t, size, [2]int64{4 << 20, 24 << 20})
	migID, target, console := ecsGatewaySync(t, w)
	w.serve.cmd.Process.Signal(syscall.SIGKILL)
	w.serve.cmd.Wait()
	stopped := time.Now()
	waitFor(t, "the gateway to stop vouching for credentials", 10*time.Second, func() bool {
		return strings.Contains(console(), "no word from the control plane's revocation feed")
	})
	t.Logf("the remote gateway answered busy %s after the control plane stopped", time.Since(stopped).Round(time.Millisecond))
	at := allocated(t, target)
	time.Sleep(3 * time.Second) // observing that nothing happens takes a window
	if now := allocated(t, target); now > at {
		t.Fatalf("the ECS disk grew from %d to %d bytes while the gateway could not check credentials", at, now)
	}
	if out := w.agent.out.String(); strings.Contains(out, "unauthorized") {
		t.Fatalf("the agent was refused as unauthorized while the control plane was away:\n%s", tail(out, 3000))
	}
	w.startServe(t)
	w.admin = loginAt(t, w.base, "admin@example.com", adminPassword)
	var m map[string]any
	waitFor(t, "the sync to finish after the control plane came back", 180*time.Second, func() bool {
		m = w.migration(t, w.admin, migID)
		if m["state"] == "failed" {
			t.Fatalf("migration failed: %v %v", m["failureReason"], m["lastError"])
		}
		return m["state"] == "syncing" && m["percent"] == float64(100) && m["latestRecoveryPoint"] != nil
	})
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, size)); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha(t, w.img) {
		t.Fatalf("after the outage the ECS disk is %s, the source %s", got, sha(t, w.img))
	}
}
