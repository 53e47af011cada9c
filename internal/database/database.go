// Package database opens Ferry's database (SQLite in WAL mode by default) and
// applies the versioned migrations embedded from ent/migrate/migrations.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/mattn/go-sqlite3" // the embedded default database

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/migrate/migrations"
	_ "github.com/ferry-migrate/ferry/ent/runtime" // hooks and interceptors of ent/schema
)

// DB is an open database: the ent client and the raw handle below it.
type DB struct {
	Client *ent.Client
	SQL    *sql.DB
	Driver dialect.Driver
}

// DSN turns a FERRY_DATABASE_URL into a go-sqlite3 DSN. Accepted forms:
// "sqlite:///abs/path.db", "sqlite://relative/path.db", a bare file path, or
// "file:...". WAL, foreign keys, a busy timeout and immediate transactions
// are always on: they are what makes concurrent writers safe on SQLite.
func DSN(raw string) (string, error) {
	path := raw
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return "", fmt.Errorf("database url %q: PostgreSQL is not supported yet; use a SQLite path", redact(raw))
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

// Open opens the database at raw (see DSN) and, when migrate is true,
// applies pending migrations first.
func Open(ctx context.Context, raw string, migrate bool, opts ...ent.Option) (*DB, error) {
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
		return nil, fmt.Errorf("open database %s: %w", redact(raw), err)
	}
	if migrate {
		if _, err := Migrate(ctx, db); err != nil {
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
	return &DB{Client: ent.NewClient(opts...), SQL: db, Driver: drv}, nil
}

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

// Migrate applies every embedded migration not yet recorded in
// ferry_schema_migrations, each in its own transaction, in version order. It
// returns the versions it applied. atlas.sum is checked first, so an edited
// migration file stops the start-up instead of diverging schemas.
func Migrate(ctx context.Context, db *sql.DB) ([]string, error) {
	dir, err := loadDir()
	if err != nil {
		return nil, err
	}
	if err := atlas.Validate(dir); err != nil {
		return nil, fmt.Errorf("migrations: %w (was a migration file edited? regenerate with make generate)", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS ferry_schema_migrations (version TEXT PRIMARY KEY, applied_at DATETIME NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrations table: %w", err)
	}
	applied := map[string]bool{}
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
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}
	var done []string
	for _, f := range files {
		if applied[f.Version()] {
			continue
		}
		stmts, err := f.Stmts()
		if err != nil {
			return done, fmt.Errorf("migration %s: %w", f.Name(), err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return done, err
		}
		for i, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				tx.Rollback()
				return done, fmt.Errorf("migration %s statement %d: %w", f.Name(), i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ferry_schema_migrations (version, applied_at) VALUES (?, ?)`, f.Version(), time.Now().UTC()); err != nil {
			tx.Rollback()
			return done, err
		}
		if err := tx.Commit(); err != nil {
			return done, fmt.Errorf("migration %s: %w", f.Name(), err)
		}
		done = append(done, f.Version())
	}
	return done, nil
}

// Pending lists migrations that Migrate would apply.
func Pending(ctx context.Context, db *sql.DB) ([]string, error) {
	dir, err := loadDir()
	if err != nil {
		return nil, err
	}
	applied := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT version FROM ferry_schema_migrations`)
	if err == nil {
		for rows.Next() {
			var v string
			rows.Scan(&v)
			applied[v] = true
		}
		rows.Close()
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

func loadDir() (*atlas.MemDir, error) {
	dir := &atlas.MemDir{}
	names, err := fs.Glob(migrations.FS, "*")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := migrations.FS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		if err := dir.WriteFile(n, b); err != nil {
			return nil, err
		}
	}
	return dir, nil
}

// redact hides a password in a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
