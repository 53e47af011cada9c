//go:build ignore

// diff.go writes a new versioned migration for each database Ferry runs on
// (SQLite and PostgreSQL) when ent/schema has changed (`make generate` runs
// it; with no change it writes nothing, so generation is reproducible). The
// SQLite diff replays its directory on an in-memory database; the PostgreSQL
// diff needs a real server, so it starts a throwaway cluster (internal/pgtest)
// unless FERRY_TEST_POSTGRES_URL names one.
// Usage: go run ./ent/migrate/diff.go NAME
package main

import (
	"context"
	"database/sql"
	"log"
	"os"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	_ "github.com/mattn/go-sqlite3"

	"github.com/ferry-migrate/ferry/ent/migrate"
	"github.com/ferry-migrate/ferry/internal/pgtest"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run ./ent/migrate/diff.go NAME")
	}
	name := os.Args[1]
	ctx := context.Background()
	if err := diff(ctx, dialect.SQLite, "sqlite3", "file:diff?mode=memory&_fk=1", name); err != nil {
		log.Fatalf("diff sqlite: %v", err)
	}
	admin := os.Getenv(pgtest.EnvURL)
	var cluster *pgtest.Cluster
	if admin == "" {
		var err error
		if cluster, err = pgtest.StartCluster(); err != nil {
			log.Fatalf("diff postgres: %v", err)
		}
		admin = cluster.URL
	}
	err := func() error {
		dev, err := pgtest.CreateDatabaseAt(ctx, admin, "ferry_diff")
		if err != nil {
			return err
		}
		defer pgtest.DropDatabase(ctx, admin, dev)
		return diff(ctx, dialect.Postgres, "pgx", dev, name)
	}()
	if cluster != nil {
		cluster.Stop()
	}
	if err != nil {
		log.Fatalf("diff postgres: %v", err)
	}
}

// diff replays ent/migrate/migrations/DIALECT on an empty dev database and
// writes the statements that bring it to ent/schema as a new file.
func diff(ctx context.Context, d, driver, dsn, name string) error {
	path := "ent/migrate/migrations/" + map[string]string{dialect.SQLite: "sqlite", dialect.Postgres: "postgres"}[d]
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	dir, err := atlas.NewLocalDir(path)
	if err != nil {
		return err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return migrate.NewSchema(entsql.OpenDB(d, db)).NamedDiff(ctx, name,
		schema.WithDir(dir),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(d),
		schema.WithFormatter(atlas.DefaultFormatter),
	)
}
