package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/throttle"
	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// syncWorld is a server with workers and one migration in its initial
// sync: the agent's row, the command it would receive, and a source image.
type syncWorld struct {
	ts      *testServer
	admin   *client
	agentID int
	cmd     engine.SyncCommandDisk
	img     string
}

func newSyncWorld(t *testing.T, size int64) *syncWorld {
	t.Helper()
	ts := mustStart(t, func(c *app.Config) { c.Workers = 2 })
	ts.App.Migrations.FollowFor = time.Second // short follower tasks: a quick shutdown
	if err := ts.App.StartWorkers(); err != nil {
		t.Fatal(err)
	}
	sys := viewer.SystemContext(context.Background())
	cl := ts.App.DB.Client
	tn := cl.Tenant.Query().OnlyX(sys)
	h := cl.Host.Create().SetTenantID(tn.ID).SetName("web1").SaveX(sys)
	cl.Disk.Create().SetTenantID(tn.ID).SetHostID(h.ID).SetName("vda").SetSizeBytes(size).ExecX(sys)
	ag := cl.Agent.Create().SetTenantID(tn.ID).SetCredentialHash([]byte("agent-credential-hash")).SetHostID(h.ID).SaveX(sys)

	w := &syncWorld{ts: ts, admin: ts.login(t, admin, adminPassword), agentID: ag.ID, img: filepath.Join(t.TempDir(), "web1.img")}
	src := make([]byte, size)
	rand.Read(src[:size/2]) // incompressible data, then zeros
	if err := os.WriteFile(w.img, src, 0o600); err != nil {
		t.Fatal(err)
	}
	w.admin.mustGQL(`mutation($h: [ID!]!) { startMigration(hostIds: $h) { id } }`, map[string]any{"h": []string{strconv.Itoa(h.ID)}})
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmds, err := ts.App.MigrationCommands(context.Background(), ag.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cmds) == 1 {
			var c engine.SyncCommand
			if err := json.Unmarshal(cmds[0].Payload, &c); err != nil || len(c.Disks) != 1 {
				t.Fatalf("sync command %s: %v", cmds[0].Payload, err)
			}
			w.cmd = c.Disks[0]
			return w
		}
		if time.Now().After(deadline) {
			t.Fatal("the migration never asked the agent for a sync")
		}
		time.Sleep(50 * time.Millisecond) // polling the database with a deadline
	}
}

func (w *syncWorld) status(t *testing.T, method, disk, credential string) int {
	t.Helper()
	req, _ := http.NewRequest(method, w.ts.URL+"/sync/v1/disks/"+disk+"/checkpoint", nil)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRevokedAgentLosesSyncAccess revokes an agent through GraphQL while a
// real sync client streams its disk through the in-process gateway with
// the credential the control plane issued: the stream is refused within
// 5 s, and so is every later use of the still-unexpired credential.
func TestRevokedAgentLosesSyncAccess(t *testing.T) {
	w := newSyncWorld(t, 24<<20)
	s, err := engine.NewSyncer(engine.SyncOptions{Source: w.img, DiskID: w.cmd.DiskID, Gateway: w.ts.URL, Credential: w.cmd.Credential,
		Rate: throttle.Rate(1 << 20), BlockSize: 64 << 10, RetryFor: 30 * time.Second, ProgressEvery: 50 * time.Millisecond,
		Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	go func() { defer close(finished); _, err := s.Run(ctx); done <- err }()
	t.Cleanup(func() { cancel(); <-finished }) // the client logs through t: it must end with the test
	deadline := time.Now().Add(60 * time.Second)
	for s.Progress().SentBytes < 1<<20 {
		select {
		case err := <-done:
			t.Fatalf("the sync ended before the revocation: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the sync never got going")
		}
		time.Sleep(20 * time.Millisecond) // polling progress with a deadline
	}
	w.admin.mustGQL(`mutation($id: ID!) { revokeAgent(id: $id) { id revokedAt } }`, map[string]any{"id": strconv.Itoa(w.agentID)})
	revoked := time.Now()
	select {
	case err := <-done:
		var ge *engine.GatewayError
		if !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized {
			t.Fatalf("the sync after revocation: %v, want 401 from the gateway", err)
		}
		t.Logf("revoked at %d KiB sent; the gateway refused the stream %s later", s.Progress().SentBytes>>10, time.Since(revoked).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked agent's sync was still running 5 s after the revocation")
	}
	if got := w.status(t, "GET", w.cmd.DiskID, w.cmd.Credential); got != http.StatusUnauthorized {
		t.Fatalf("the revoked agent's credential afterwards: %d, want 401", got)
	}
}

// TestSyncAnswersHideWhichDisksExist: without a valid credential, a disk
// that exists (a live migration's target) and one that does not get the
// same answer.
func TestSyncAnswersHideWhichDisksExist(t *testing.T) {
	w := newSyncWorld(t, 1<<20)
	other, err := engine.NewGateway(engine.GatewayOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.IssueCredential(w.cmd.DiskID, time.Hour)
	missing := "i-99999-vda"
	for _, c := range []struct{ name, cred string }{{"anonymous", ""}, {"garbage", "fc1.x.y"}, {"another gateway's key", forged}} {
		for _, method := range []string{"GET", "POST"} {
			exists, gone, foreign := w.status(t, method, w.cmd.DiskID, c.cred), w.status(t, method, missing, c.cred), w.status(t, method, "not-a-target", c.cred)
			if exists != http.StatusUnauthorized || gone != exists || foreign != exists {
				t.Errorf("%s %s: existing disk %d, missing disk %d, foreign disk %d; want 401 for all", c.name, method, exists, gone, foreign)
			}
		}
	}
	if got := w.status(t, "GET", w.cmd.DiskID, w.cmd.Credential); got == http.StatusUnauthorized {
		t.Fatalf("the agent's own credential: %d", got)
	}
}
