package database_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql/schema"
	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestMigrationsMatchTheSchema replays each dialect's migrations on an
// empty database (a SQLite file; a database on a real PostgreSQL server) and
// checks that ent/schema needs no further change.
func TestMigrationsMatchTheSchema(t *testing.T) {
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			url := filepath.Join(t.TempDir(), "sub", "ferry.db")
			if d == dialect.Postgres {
				url = pgtest.Database(t)
			}
			db, err := database.Open(ctx, url, false)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.Dialect != d {
				t.Fatalf("dialect of %s = %q", url, db.Dialect)
			}
			pending, err := db.Pending(ctx)
			if err != nil || len(pending) == 0 {
				t.Fatalf("pending on an empty database = %v, %v", pending, err)
			}
			done, err := db.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(done) != len(pending) {
				t.Fatalf("applied %v, pending was %v", done, pending)
			}
			again, err := db.Migrate(ctx)
			if err != nil || len(again) != 0 {
				t.Fatalf("second run applied %v (%v); migrations must apply once", again, err)
			}
			if p, err := db.Pending(ctx); err != nil || len(p) != 0 {
				t.Fatalf("pending after migrating = %v, %v", p, err)
			}
			// The migrated database needs no further change to match ent/schema:
			// a schema edit without a new migration file fails here.
			var buf bytes.Buffer
			if err := db.Client.Schema.WriteTo(ctx, &buf, schema.WithDropColumn(true), schema.WithDropIndex(true)); err != nil {
				t.Fatal(err)
			}
			var changes []string
			for _, line := range strings.Split(buf.String(), "\n") {
				if line = strings.TrimSpace(line); line != "" && line != "BEGIN;" && line != "COMMIT;" {
					changes = append(changes, line)
				}
			}
			if len(changes) > 0 {
				t.Fatalf("ent/schema differs from the %s migrations; run `make generate`:\n%s", d, strings.Join(changes, "\n"))
			}
			if d == dialect.SQLite {
				// WAL is on, as the embedded default promises.
				var mode string
				if err := db.SQL.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
					t.Fatalf("journal_mode = %q, %v", mode, err)
				}
			}
		})
	}
}

// Replicas starting together against one PostgreSQL apply each migration
// once: the advisory lock serialises them.
func TestConcurrentMigrationsApplyOnce(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make([][]string, 4)
	errs := make([]error, 4)
	for i := range applied {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := database.Open(ctx, url, false)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			applied[i], errs[i] = db.Migrate(ctx)
		}()
	}
	wg.Wait()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	db, err := database.Open(ctx, url, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.SQL.QueryRow(`SELECT COUNT(*) FROM ferry_schema_migrations`).Scan(&n)
	if total != n || n == 0 {
		t.Fatalf("replicas applied %d migrations in all, %d recorded", total, n)
	}
}

func TestDSN(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "var/ferry.db", want: "file:var/ferry.db?"},
		{in: "sqlite:///abs/f.db", want: "file:/abs/f.db?"},
		{in: "file:x.db?mode=memory", want: "mode=memory"},
		{in: "postgres://u:pw@h/db", err: "is PostgreSQL, not a SQLite path"},
		{in: "sqlite://", err: "names no file"},
	} {
		got, err := database.DSN(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), ":pw@") {
				t.Errorf("DSN(%q) error = %v, want %q without the password", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !strings.Contains(got, tc.want) || !strings.Contains(got, "_journal_mode=WAL") || !strings.Contains(got, "_fk=1") {
			t.Errorf("DSN(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// Opening a database gathers planner statistics for tables that have none,
// so SQLite learns that tenant_id is not selective (see Open).
func TestOpenGathersStatistics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	db, err := database.Open(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := db.SQL.Begin()
	tx.Exec(`INSERT INTO tenants (id, created_at, updated_at, name, slug) VALUES (1, datetime('now'), datetime('now'), 't', 't')`)
	for i := 0; i < 2000; i++ {
		if _, err := tx.Exec(`INSERT INTO applications (created_at, updated_at, tenant_id, name, description, suggested) VALUES (datetime('now'), datetime('now'), 1, ?, '', 0)`, fmt.Sprint("app-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = database.Open(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stat string
	if err := db.SQL.QueryRow(`SELECT stat FROM sqlite_stat1 WHERE idx = 'application_tenant_id'`).Scan(&stat); err != nil {
		t.Fatalf("no statistics for applications after reopening: %v", err)
	}
	if !strings.HasPrefix(stat, "2000 2000") {
		t.Fatalf("stat1 for application_tenant_id = %q, want 2000 rows with 2000 per tenant", stat)
	}
}

// TestDatabaseFilesArePrivate: the database, its -wal and -shm are 0600
// in a 0700 directory even under a umask that would leave them readable by
// everyone, and files an older version left open are tightened.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "ferry.db")
	db, err := database.Open(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL.ExecContext(ctx, `INSERT INTO ferry_schema_migrations (version, applied_at) VALUES ('test', CURRENT_TIMESTAMP)`); err != nil {
		t.Fatal(err)
	}
	modes := func() map[string]os.FileMode {
		out := map[string]os.FileMode{}
		for _, p := range []string{dir, path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(p)] = st.Mode().Perm()
		}
		return out
	}
	want := map[string]os.FileMode{"data": 0o700, "ferry.db": 0o600, "ferry.db-wal": 0o600, "ferry.db-shm": 0o600}
	if d := cmp.Diff(want, modes()); d != "" {
		t.Fatalf("modes of a new database (-want +got):\n%s", d)
	}
	db.Close()

	// An installation from before: everything 0644 in a 0755 directory.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
		os.Chmod(p, 0o644)
	}
	db, err = database.Open(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := modes()
	delete(want, "data") // the directory is the server's to tighten (internal/app)
	delete(got, "data")
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("modes after reopening a 0644 database (-want +got):\n%s", d)
	}
}
