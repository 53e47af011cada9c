//go:build ignore

// diff.go writes a new versioned migration when ent/schema has changed
// (`make generate` runs it; with no change it writes nothing, so generation
// is reproducible). Usage: go run ./ent/migrate/diff.go NAME
package main

import (
	"context"
	"log"
	"os"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql/schema"
	_ "github.com/mattn/go-sqlite3"

	"github.com/ferry-migrate/ferry/ent/migrate"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run ./ent/migrate/diff.go NAME")
	}
	dir, err := atlas.NewLocalDir("ent/migrate/migrations")
	if err != nil {
		log.Fatalf("migration dir: %v", err)
	}
	err = migrate.NamedDiff(context.Background(), "sqlite3://file?mode=memory&_fk=1", os.Args[1],
		schema.WithDir(dir),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(dialect.SQLite),
		schema.WithFormatter(atlas.DefaultFormatter),
	)
	if err != nil {
		log.Fatalf("diff: %v", err)
	}
}
