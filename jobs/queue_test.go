package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/ent/session"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/jobs"
)

// TestPruneSessionsOnRealRedis runs the housekeeping task through a real
// redis-server and a real asynq server, against a real SQLite file: expired
// sessions go, live ones stay, and a duplicate enqueue is refused by Unique.
func TestPruneSessionsOnRealRedis(t *testing.T) {
	ctx := context.Background()
	db, err := database.Open(ctx, filepath.Join(t.TempDir(), "f.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sys := viewer.SystemContext(ctx)
	tn := db.Client.Tenant.Create().SetName("T").SetSlug("t").SaveX(sys)
	u := db.Client.User.Create().SetTenantID(tn.ID).SetEmail("u@t.example").SaveX(sys)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	db.Client.Session.Create().SetTenantID(tn.ID).SetUser(u).SetTokenHash([]byte("old")).SetExpiresAt(now.Add(-time.Hour)).ExecX(sys)
	db.Client.Session.Create().SetTenantID(tn.ID).SetUser(u).SetTokenHash([]byte("new")).SetExpiresAt(now.Add(time.Hour)).ExecX(sys)

	q, err := jobs.Open(redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Embedded {
		t.Fatal("a real Redis URL must not start the embedded queue")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := asynq.NewServeMux()
	(&jobs.Maintenance{Client: db.Client, Now: func() time.Time { return now }, Log: log}).Register(mux)
	srv := jobs.NewServer(q, 2, log)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	task, opts := jobs.NewPruneSessionsTask()
	if _, err := q.Client.Enqueue(task, opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Client.Enqueue(task, opts...); !errors.Is(err, asynq.ErrDuplicateTask) {
		t.Fatalf("second enqueue within the hour: %v, want ErrDuplicateTask", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := db.Client.Session.Query().Count(sys)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left after 15s; the task did not run", n)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	left := db.Client.Session.Query().Where(session.TokenHash([]byte("new"))).CountX(sys)
	if left != 1 {
		t.Fatal("the live session was deleted")
	}
}
