package database

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/mattn/go-sqlite3"
)

// ErrBusy says the database stayed locked by other writers for longer than
// a writer may wait. It is worth retrying: transports answer 503 with
// Retry-After, never 500.
var ErrBusy = errors.New("the database is busy; try again shortly")

// IsBusy reports whether err is the database being locked by another
// writer (ErrBusy, or SQLite's own SQLITE_BUSY / SQLITE_LOCKED when a
// writer of another process held the lock past the busy timeout).
func IsBusy(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrBusy) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		return true
	}
	// ent wraps some driver errors as text only.
	return strings.Contains(err.Error(), "database is locked") || strings.Contains(err.Error(), "database table is locked")
}

// gateWait is how long a writer waits for the gate, the same as SQLite's
// busy timeout (DSN: _busy_timeout).
const gateWait = 10 * time.Second

// gatedDriver lets this process's writers into SQLite one at a time, in the
// order they arrived. SQLite's own lock is not fair: a waiting writer polls
// (sleeping up to 100 ms between tries), so a writer that commits and
// begins again at once — an import storing chunk after chunk — can keep it
// out until its busy timeout expires ("database is locked"). Waiting here
// instead, a heartbeat is let in as soon as the chunk before it commits.
// A write transaction holds the gate from BEGIN to COMMIT or ROLLBACK; a
// statement outside a transaction holds it while it runs when it writes.
// Reads outside transactions never wait (WAL lets them run beside a
// writer). Other processes sharing the file (`ferry worker`) still meet
// SQLite's busy timeout.
type gatedDriver struct {
	dialect.Driver
	gate chan struct{} // one slot; waiting senders are served first come, first served
}

func newGatedDriver(d dialect.Driver) *gatedDriver {
	return &gatedDriver{Driver: d, gate: make(chan struct{}, 1)}
}

// acquire waits for the gate, at most gateWait and never past ctx.
func (d *gatedDriver) acquire(ctx context.Context) (func(), error) {
	select {
	case d.gate <- struct{}{}:
		return d.release, nil
	default:
	}
	t := time.NewTimer(gateWait)
	defer t.Stop()
	select {
	case d.gate <- struct{}{}:
		return d.release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("%w (waited %s for other writers)", ErrBusy, gateWait)
	}
}

func (d *gatedDriver) release() { <-d.gate }

// writes reports whether a statement sent through Query changes data
// (ent inserts with INSERT … RETURNING through Query).
func writes(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	if len(q) > 8 {
		q = q[:8]
	}
	q = strings.ToUpper(q)
	for _, p := range []string{"INSERT", "UPDATE", "DELETE", "REPLACE"} {
		if strings.HasPrefix(q, p) {
			return true
		}
	}
	return false
}

func (d *gatedDriver) Exec(ctx context.Context, query string, args, v any) error {
	release, err := d.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return d.Driver.Exec(ctx, query, args, v)
}

func (d *gatedDriver) Query(ctx context.Context, query string, args, v any) error {
	if writes(query) {
		release, err := d.acquire(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	return d.Driver.Query(ctx, query, args, v)
}

func (d *gatedDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	release, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		release()
		return nil, err
	}
	return newGatedTx(ctx, tx, release), nil
}

// BeginTx is Tx with options (ent's Client.BeginTx).
func (d *gatedDriver) BeginTx(ctx context.Context, opts *stdsql.TxOptions) (dialect.Tx, error) {
	b, ok := d.Driver.(interface {
		BeginTx(context.Context, *stdsql.TxOptions) (dialect.Tx, error)
	})
	if !ok {
		return d.Tx(ctx)
	}
	release, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		release()
		return nil, err
	}
	return newGatedTx(ctx, tx, release), nil
}

// QueryContext passes ent's raw reads through (the tenant hook's
// reference check); they never wait.
func (d *gatedDriver) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	q, ok := d.Driver.(interface {
		QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("driver %T cannot run raw queries", d.Driver)
	}
	return q.QueryContext(ctx, query, args...)
}

// ExecContext runs a raw statement through the gate.
func (d *gatedDriver) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	e, ok := d.Driver.(interface {
		ExecContext(context.Context, string, ...any) (stdsql.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("driver %T cannot run raw statements", d.Driver)
	}
	release, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return e.ExecContext(ctx, query, args...)
}

// gatedTx lets go of the gate when the transaction ends: on Commit, on
// Rollback, or when its context ends (database/sql then rolls it back).
type gatedTx struct {
	dialect.Tx
	release func()
	stop    func() bool
}

func newGatedTx(ctx context.Context, tx dialect.Tx, release func()) *gatedTx {
	once := sync.OnceFunc(release)
	return &gatedTx{Tx: tx, release: once, stop: context.AfterFunc(ctx, once)}
}

func (t *gatedTx) Commit() error {
	defer t.end()
	return t.Tx.Commit()
}

func (t *gatedTx) Rollback() error {
	defer t.end()
	return t.Tx.Rollback()
}

func (t *gatedTx) end() {
	t.stop()
	t.release()
}

// QueryContext and ExecContext pass raw statements to the transaction
// (the tenant hook's reference check runs inside it).
func (t *gatedTx) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	q, ok := t.Tx.(interface {
		QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("transaction %T cannot run raw queries", t.Tx)
	}
	return q.QueryContext(ctx, query, args...)
}

func (t *gatedTx) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	e, ok := t.Tx.(interface {
		ExecContext(context.Context, string, ...any) (stdsql.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("transaction %T cannot run raw statements", t.Tx)
	}
	return e.ExecContext(ctx, query, args...)
}
