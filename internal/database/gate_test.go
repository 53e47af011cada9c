package database_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// TestWritersTakeTurns: a writer that commits and begins again at once (an
// import storing chunk after chunk) does not keep another writer out; the
// other one gets in after at most the transaction in progress, and never
// sees "database is locked".
func TestWritersTakeTurns(t *testing.T) {
	ctx := viewer.SystemContext(context.Background())
	db, err := database.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tn := db.Client.Tenant.Create().SetName("T").SetSlug("t").SaveX(ctx)

	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	stop := make(chan struct{})
	loopDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				loopDone <- nil
				return
			default:
			}
			tx, err := db.Client.Tx(ctx)
			if err != nil {
				loopDone <- err
				return
			}
			note("L")
			if err := tx.Tenant.UpdateOneID(tn.ID).SetName(fmt.Sprintf("T%d", i)).Exec(ctx); err != nil {
				tx.Rollback()
				loopDone <- err
				return
			}
			time.Sleep(2 * time.Millisecond) // a transaction that takes a while, as a chunk of rows does
			if err := tx.Commit(); err != nil {
				loopDone <- err
				return
			}
		}
	}()
	for i := range 20 {
		note("W?")
		if _, err := db.Client.Tenant.Create().SetName(fmt.Sprintf("W%d", i)).SetSlug(fmt.Sprintf("w%d", i)).Save(ctx); err != nil {
			t.Fatalf("write %d while another writer loops: %v", i, err)
		}
		note("W!")
	}
	close(stop)
	if err := <-loopDone; err != nil {
		t.Fatalf("looping writer: %v", err)
	}
	// Between asking and getting in, a writer lets through the transaction
	// holding the gate and at most one that raced it to the queue.
	mu.Lock()
	defer mu.Unlock()
	waited := 0
	for _, e := range events {
		switch e {
		case "W?":
			waited = 0
		case "L":
			waited++
		case "W!":
			if waited > 2 {
				t.Fatalf("a writer waited for %d transactions of the loop: %v", waited, events)
			}
		}
	}
}

// TestGateRespectsContext: a writer waiting for the gate gives up when its
// context ends, and the gate is let go when a transaction's context ends.
func TestGateRespectsContext(t *testing.T) {
	ctx := viewer.SystemContext(context.Background())
	db, err := database.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	txCtx, cancelTx := context.WithCancel(ctx)
	tx, err := db.Client.Tx(txCtx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.Client.Tenant.Create().SetName("X").SetSlug("x").Save(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write behind an open transaction with a short deadline: %v", err)
	}
	cancelTx() // an abandoned transaction: database/sql rolls it back
	_ = tx
	if _, err := db.Client.Tenant.Create().SetName("Y").SetSlug("y").Save(ctx); err != nil {
		t.Fatalf("write after the transaction's context ended: %v", err)
	}
}

func TestIsBusy(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{fmt.Errorf("heartbeat: %w", database.ErrBusy), true},
		{fmt.Errorf("x: %w", sqlite3.Error{Code: sqlite3.ErrBusy}), true},
		{fmt.Errorf("x: %w", sqlite3.Error{Code: sqlite3.ErrConstraint}), false},
		{errors.New("ent: database is locked"), true},
	} {
		if got := database.IsBusy(tc.err); got != tc.want {
			t.Errorf("IsBusy(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
