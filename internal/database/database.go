// Package database opens Ferry's database (SQLite in WAL mode by default,
// PostgreSQL for several processes) and applies the versioned migrations
// embedded from ent/migrate/migrations/<dialect>.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL, for several serve and worker processes
	_ "github.com/mattn/go-sqlite3"    // the embedded default database

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/migrate/migrations"
	_ "github.com/ferry-migrate/ferry/ent/runtime" // hooks and interceptors of ent/schema
)

// DB is an open database: the ent client and the raw handle below it.
type DB struct {
	Client *ent.Client
	SQL    *sql.DB
	Driver dialect.Driver
	// Dialect is dialect.SQLite or dialect.Postgres.
	Dialect string
}

// IsPostgres reports whether raw (a FERRY_DATABASE_URL) names PostgreSQL.
func IsPostgres(raw string) bool {
	return strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://")
}

// DSN turns a FERRY_DATABASE_URL into a go-sqlite3 DSN. Accepted forms:
// "sqlite:///abs/path.db", "sqlite://relative/path.db", a bare file path, or
// "file:...". WAL, foreign keys, a busy timeout and immediate transactions
// are always on: they are what makes concurrent writers safe on SQLite.
func DSN(raw string) (string, error) {
	path := raw
	switch {
	case IsPostgres(raw):
		return "", fmt.Errorf("database url %q is PostgreSQL, not a SQLite path", Redact(raw))
	case strings.HasPrefix(raw, "sqlite://"):
		path = strings.TrimPrefix(raw, "sqlite://")
	case strings.HasPrefix(raw, "file:"):
		path = strings.TrimPrefix(raw, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
	}
	if path == "" {
		return "", fmt.Errorf("database url %q names no file", raw)
	}
	q := url.Values{}
	q.Set("_fk", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	// 32 MiB of page cache per connection (SQLite's default is 2 MiB): a
	// filtered count over a 20,000-host table otherwise re-reads its pages
	// from the OS on every request.
	q.Set("_cache_size", "-32768")
	if strings.Contains(raw, "mode=memory") {
		q.Set("mode", "memory")
		q.Set("cache", "shared")
	}
	return "file:" + path + "?" + q.Encode(), nil
}

// Open opens the database at raw (a SQLite path or URL, see DSN, or a
// postgres:// URL) and, when migrate is true, applies pending migrations
// first.
func Open(ctx context.Context, raw string, migrate bool, opts ...ent.Option) (*DB, error) {
	if IsPostgres(raw) {
		return openPostgres(ctx, raw, migrate, opts...)
	}
	dsn, err := DSN(raw)
	if err != nil {
		return nil, err
	}
	path := ""
	if !strings.Contains(dsn, "mode=memory") {
		path = strings.TrimPrefix(dsn, "file:")
		path = path[:strings.IndexByte(path, '?')]
		if err := prepareFiles(path); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Keep as many idle connections as open ones: database/sql's default of
	// two idle closed and reopened SQLite connections (file, WAL, schema
	// parse) on every burst of concurrent requests.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", Redact(raw), err)
	}
	if migrate {
		if _, err := Migrate(ctx, db, dialect.SQLite); err != nil {
			db.Close()
			return nil, err
		}
	}
	// Let SQLite gather statistics for tables that need them, so its planner
	// knows that tenant_id is not selective (also run hourly by maintenance).
	if !strings.Contains(dsn, "mode=memory") {
		if _, err := db.ExecContext(ctx, "PRAGMA optimize=0x10002"); err != nil {
			db.Close()
			return nil, fmt.Errorf("optimize database: %w", err)
		}
	}
	if path != "" {
		// -wal and -shm exist now; SQLite gives them the database file's
		// mode, but a file left by an older version keeps its own.
		if err := tighten(path+"-wal", path+"-shm"); err != nil {
			db.Close()
			return nil, err
		}
	}
	// Writers of this process take turns through one gate (gate.go).
	drv := newGatedDriver(entsql.OpenDB(dialect.SQLite, db))
	opts = append([]ent.Option{ent.Driver(drv)}, opts...)
	return &DB{Client: ent.NewClient(opts...), SQL: db, Driver: drv, Dialect: dialect.SQLite}, nil
}

// openPostgres opens a PostgreSQL database through pgx's database/sql
// driver. Every serve and worker process keeps its own pool; the server's
// max_connections must cover them all (16 per process).
func openPostgres(ctx context.Context, raw string, migrate bool, opts ...ent.Option) (*DB, error) {
	db, err := sql.Open("pgx", raw)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(raw), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", Redact(raw), err)
	}
	if migrate {
		if _, err := Migrate(ctx, db, dialect.Postgres); err != nil {
			db.Close()
			return nil, err
		}
	}
	drv := entsql.OpenDB(dialect.Postgres, db)
	opts = append([]ent.Option{ent.Driver(drv)}, opts...)
	return &DB{Client: ent.NewClient(opts...), SQL: db, Driver: drv, Dialect: dialect.Postgres}, nil
}

// Migrate applies the pending migrations (see the Migrate function).
func (d *DB) Migrate(ctx context.Context) ([]string, error) { return Migrate(ctx, d.SQL, d.Dialect) }

// Pending lists the migrations Migrate would apply.
func (d *DB) Pending(ctx context.Context) ([]string, error) { return Pending(ctx, d.SQL, d.Dialect) }

// prepareFiles makes the database's directory (0700) and file (0600)
// before SQLite opens it, whatever the process umask: SQLite creates a new
// database 0644 and its -wal and -shm files with the database's mode, so a
// database that starts private keeps every file private. Files an older
// version left readable by others are tightened.
func prepareFiles(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database file: %w", err)
	}
	f.Close()
	return tighten(path, path+"-wal", path+"-shm")
}

// tighten removes group and other permissions from the files that exist.
func tighten(paths ...string) error {
	for _, p := range paths {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database file: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("make %s private: %w", p, err)
			}
		}
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error { return d.Client.Close() }

// migrationLock is the PostgreSQL advisory lock that serialises Migrate
// across processes: several replicas may start at once.
const migrationLock = 0x6665727279 // "ferry"

// Migrate applies every embedded migration of dialect d not yet recorded in
// ferry_schema_migrations, each in its own transaction, in version order. It
// returns the versions it applied. atlas.sum is checked first, so an edited
// migration file stops the start-up instead of diverging schemas. Processes
// starting together apply each migration once: on PostgreSQL an advisory
// lock is held throughout; on SQLite each migration's immediate transaction
// takes the write lock and checks again that it is still pending.
func Migrate(ctx context.Context, db *sql.DB, d string) ([]string, error) {
	dir, err := loadDir(d)
	if err != nil {
		return nil, err
	}
	if err := atlas.Validate(dir); err != nil {
		return nil, fmt.Errorf("migrations: %w (was a migration file edited? regenerate with make generate)", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d == dialect.Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
			return nil, fmt.Errorf("migrations lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ferry_schema_migrations (version TEXT PRIMARY KEY, applied_at `+timeType(d)+` NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrations table: %w", err)
	}
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}
	var done []string
	for _, f := range files {
		stmts, err := f.Stmts()
		if err != nil {
			return done, fmt.Errorf("migration %s: %w", f.Name(), err)
		}
		applied, err := func() (bool, error) {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return false, err
			}
			defer tx.Rollback()
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM ferry_schema_migrations WHERE version = $1`, f.Version()).Scan(&n); err != nil {
				return false, err
			}
			if n > 0 {
				return false, nil
			}
			for i, s := range stmts {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return false, fmt.Errorf("migration %s statement %d: %w", f.Name(), i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO ferry_schema_migrations (version, applied_at) VALUES ($1, $2)`, f.Version(), time.Now().UTC()); err != nil {
				return false, err
			}
			if err := tx.Commit(); err != nil {
				return false, fmt.Errorf("migration %s: %w", f.Name(), err)
			}
			return true, nil
		}()
		if err != nil {
			return done, err
		}
		if applied {
			done = append(done, f.Version())
		}
	}
	if err := appendOnly(ctx, conn, d); err != nil {
		return done, err
	}
	return done, nil
}

// appendOnlySQL makes audit_events refuse UPDATE, DELETE (and, on
// PostgreSQL, TRUNCATE) in the database itself, below ent's hook: no code
// path and no SQL session of the application role can rewrite history.
// It is (re)applied after every migration run rather than written into a
// migration file: SQLite drops a table's triggers when a migration rebuilds
// the table, and every statement here is idempotent.
var appendOnlySQL = map[string][]string{
	dialect.SQLite: {
		`CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END`,
		`CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END`,
	},
	dialect.Postgres: {
		`CREATE OR REPLACE FUNCTION ferry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP; END $$`,
		`CREATE OR REPLACE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION ferry_append_only()`,
		`CREATE OR REPLACE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION ferry_append_only()`,
	},
}

func appendOnly(ctx context.Context, conn *sql.Conn, d string) error {
	for _, q := range appendOnlySQL[d] {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("audit triggers: %w", err)
		}
	}
	return nil
}

func timeType(d string) string {
	if d == dialect.Postgres {
		return "TIMESTAMPTZ"
	}
	return "DATETIME"
}

// Pending lists migrations of dialect d that Migrate would apply.
func Pending(ctx context.Context, db *sql.DB, d string) ([]string, error) {
	dir, err := loadDir(d)
	if err != nil {
		return nil, err
	}
	applied := map[string]bool{}
	var exists bool
	q := `SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'ferry_schema_migrations'`
	if d == dialect.Postgres {
		q = `SELECT to_regclass('ferry_schema_migrations') IS NOT NULL`
	}
	if err := db.QueryRowContext(ctx, q).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrations table: %w", err)
	}
	if exists {
		rows, err := db.QueryContext(ctx, `SELECT version FROM ferry_schema_migrations`)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		if !applied[f.Version()] {
			out = append(out, f.Version())
		}
	}
	return out, nil
}

// Dirs names the embedded migration directory of each dialect.
var Dirs = map[string]string{dialect.SQLite: "sqlite", dialect.Postgres: "postgres"}

func loadDir(d string) (*atlas.MemDir, error) {
	sub, ok := Dirs[d]
	if !ok {
		return nil, fmt.Errorf("migrations: no directory for dialect %q", d)
	}
	dir := &atlas.MemDir{}
	names, err := fs.Glob(migrations.FS, sub+"/*")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := migrations.FS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		if err := dir.WriteFile(path.Base(n), b); err != nil {
			return nil, err
		}
	}
	return dir, nil
}

// Redact hides a password in a URL for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
