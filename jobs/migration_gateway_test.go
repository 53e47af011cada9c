package jobs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/local"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
)

// TestSyncCommandGatewayAndPass runs the server half of a migration in one
// process against a real SQLite file, the embedded queue, the local driver
// and a real HTTP gateway: prepare creates the target disk, the agent's
// command is derived from the database (once, not on every poll), an engine
// sync through the gateway completes the pass and records a recovery point,
// and once the migration stops syncing the gateway refuses the credential
// that is still valid.
func TestSyncCommandGatewayAndPass(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := database.Open(ctx, filepath.Join(dir, "f.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sys := viewer.SystemContext(ctx)

	const size = 12 << 20
	img := filepath.Join(dir, "src.img")
	src := make([]byte, size)
	rand.Read(src[1<<20 : 5<<20]) // data, then zeros
	if err := os.WriteFile(img, src, 0o600); err != nil {
		t.Fatal(err)
	}
	tn := db.Client.Tenant.Create().SetName("T").SetSlug("t").SaveX(sys)
	h := db.Client.Host.Create().SetTenantID(tn.ID).SetName("web1").SaveX(sys)
	db.Client.Disk.Create().SetTenantID(tn.ID).SetHostID(h.ID).SetName("vda").SetSizeBytes(size).ExecX(sys)
	ag := db.Client.Agent.Create().SetTenantID(tn.ID).SetCredentialHash([]byte("h")).SetHostID(h.ID).SaveX(sys)
	other := db.Client.Agent.Create().SetTenantID(tn.ID).SetCredentialHash([]byte("h2")).SaveX(sys)

	drv, err := local.New(filepath.Join(dir, "cloud"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := engine.NewGateway(engine.GatewayOptions{Dir: filepath.Join(dir, "gateway"), Resolve: func(id string) (string, error) {
		p, err := drv.DiskPath(id)
		if errors.Is(err, cloud.ErrNotFound) {
			return "", os.ErrNotExist
		}
		return p, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := jobs.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := &jobs.Migrations{Client: db.Client, Queue: q, Driver: drv, Gateway: gw, Log: log, Tick: 50 * time.Millisecond, FollowFor: time.Second, Redeliver: time.Hour}
	mux := asynq.NewServeMux()
	m.Register(mux)
	srv := jobs.NewServer(q, 2, log)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ts := httptest.NewServer(m.GatewayHandler())
	defer ts.Close()

	mig := db.Client.Migration.Create().SetTenantID(tn.ID).SetHostID(h.ID).SaveX(sys)
	if err := m.Enqueue(ctx, jobs.TypeMigrationPrepare, jobs.MigrationPayload{MigrationID: mig.ID}); err != nil {
		t.Fatal(err)
	}
	waitState(t, db.Client, mig.ID, migration.StateInitialSync)

	if cmds, err := m.SyncCommands(ctx, other.ID); err != nil || len(cmds) != 0 {
		t.Fatalf("an agent without a host got %v, %v", cmds, err)
	}
	cmds, err := m.SyncCommands(ctx, ag.ID)
	if err != nil || len(cmds) != 1 || len(cmds[0].Disks) != 1 {
		t.Fatalf("commands: %+v, %v", cmds, err)
	}
	c := cmds[0].Disks[0]
	if c.DiskID != jobs.TargetDiskID(mig.ID, "vda") || c.SizeBytes != size || cmds[0].Pass != 1 || cmds[0].Final {
		t.Fatalf("command %+v disk %+v", cmds[0], c)
	}
	if again, _ := m.SyncCommands(ctx, ag.ID); len(again) != 0 {
		t.Fatalf("the command was sent again on the next poll: %+v", again)
	}

	sync := func() error {
		s, err := engine.NewSyncer(engine.SyncOptions{Source: img, DiskID: c.DiskID, Gateway: ts.URL, Credential: c.Credential, RetryFor: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(ctx)
		return err
	}
	if err := sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	waitState(t, db.Client, mig.ID, migration.StateSyncing)
	got := db.Client.Migration.Query().Where(migration.ID(mig.ID)).WithRecoveryPoints().OnlyX(sys)
	if got.BytesDone != size || got.BytesTotal != size || len(got.Edges.RecoveryPoints) != 1 {
		t.Fatalf("after the pass: done %d of %d, %d recovery points", got.BytesDone, got.BytesTotal, len(got.Edges.RecoveryPoints))
	}
	rp := got.Edges.RecoveryPoints[0]
	if len(rp.Points) != 1 || rp.Labels[0] != "initial" {
		t.Fatalf("recovery point %+v", rp)
	}
	// The sync read its source live (no snapshot was asked for): the point
	// says it is not a point in time, and why.
	if !slices.Contains(rp.Labels, "consistent:false") || rp.Points[0].Consistent || !strings.Contains(rp.Points[0].Consistency, "live read") {
		t.Errorf("recovery point of a live read: labels %v, point %+v", rp.Labels, rp.Points[0])
	}
	target, _ := drv.DiskPath(c.DiskID)
	if b, _ := os.ReadFile(target); !bytes.Equal(b, src) {
		t.Fatal("target disk differs from the source")
	}
	if cmds, _ := m.SyncCommands(ctx, ag.ID); len(cmds) != 0 {
		t.Fatalf("a recorded pass still yields commands: %+v", cmds)
	}

	// Continuous replication: once SyncEvery has passed the next pass is
	// requested, the agent is told, and the changed block lands in the
	// target with a second recovery point.
	m.SyncEvery = 200 * time.Millisecond
	if err := m.Enqueue(ctx, jobs.TypeMigrationSync, jobs.MigrationPayload{MigrationID: mig.ID}); err != nil {
		t.Fatal(err)
	}
	var next []engine.SyncCommand
	deadline := time.Now().Add(20 * time.Second)
	for len(next) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no second pass was requested")
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
		if next, err = m.SyncCommands(ctx, ag.ID); err != nil {
			t.Fatal(err)
		}
	}
	if next[0].Pass != 2 {
		t.Fatalf("second command is pass %d", next[0].Pass)
	}
	m.SyncEvery = time.Hour
	rand.Read(src[8<<20 : 8<<20+4096])
	if err := os.WriteFile(img, src, 0o600); err != nil {
		t.Fatal(err)
	}
	c = next[0].Disks[0]
	if err := sync(); err != nil {
		t.Fatalf("second pass: %v", err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for db.Client.RecoveryPoint.Query().CountX(sys) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second pass recorded no recovery point")
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, src) {
		t.Fatal("after the second pass the target differs from the changed source")
	}

	// A migration that no longer syncs refuses the (still valid) credential.
	db.Client.Migration.UpdateOneID(mig.ID).SetState(migration.StateRolledBack).ExecX(sys)
	var ge *engine.GatewayError
	if err := sync(); !errors.As(err, &ge) || ge.Status != http.StatusForbidden {
		t.Fatalf("sync after rollback: %v, want 403 from the gateway", err)
	}
	// A disk id that is no migration's target is not found, whatever the credential.
	resp, err := http.Post(ts.URL+"/sync/v1/disks/i-1-disk/session", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("foreign disk: status %d, want 404", resp.StatusCode)
	}
}

func waitState(t *testing.T, c *ent.Client, id int, want migration.State) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := c.Migration.GetX(viewer.SystemContext(context.Background()), id)
		if m.State == want {
			return
		}
		if m.State == migration.StateFailed || time.Now().After(deadline) {
			t.Fatalf("migration %d is %s (%s %s), want %s", id, m.State, m.FailureReason, m.LastError, want)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}
