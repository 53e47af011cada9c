package migrationtest

import (
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
