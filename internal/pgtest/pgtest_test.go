package pgtest_test

import (
	"database/sql"
	"testing"

	"github.com/ferry-migrate/ferry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A database made for a test is a real PostgreSQL database of its own.
func TestDatabase(t *testing.T) {
	a, b := pgtest.Database(t), pgtest.Database(t)
	if a == b {
		t.Fatalf("two tests share database %s", a)
	}
	db, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SHOW server_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE x (id bigint PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s at %s", v, a)
}
