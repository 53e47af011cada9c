package schema_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/ferry-migrate/ferry/ent/internal"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/pgtest"
)

// Every table's ids start where ent's global-id table says (its 1<<32
// range): the tenant hooks find a row's table from its id. When two
// branches each add a table, both are given the same next free range; the
// merge keeps one side's ranges in ent/internal/globalid.go, and the
// migrations must agree with it, on both dialects.
func TestMigrationsStartEachTableInItsIDRange(t *testing.T) {
	var starts map[string]int64
	if err := json.Unmarshal([]byte(internal.IncrementStarts), &starts); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			url := filepath.Join(t.TempDir(), "ferry.db")
			if d == dialect.Postgres {
				url = pgtest.Database(t)
			}
			db, err := database.Open(ctx, url, false)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for table, start := range starts {
				var got int64
				switch d {
				case dialect.SQLite:
					// No row: the table has never had an id, and starts at 1.
					err = db.SQL.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = ?`, table).Scan(&got)
				default:
					err = db.SQL.QueryRowContext(ctx, `SELECT seqstart FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence($1, 'id')::regclass`, table).Scan(&got)
					if start == 0 {
						start = 1 // an identity starts at 1 unless told otherwise
					}
				}
				if err != nil {
					t.Errorf("%s: %v", table, err)
					continue
				}
				if got != start {
					t.Errorf("%s starts at %d; ent/internal/globalid.go gives it %d (regenerate the branch's migration after the merge)", table, got, start)
				}
			}
		})
	}
}
