// Package lease elects one process among many for work that must run once
// across replicas — the periodic reconcilers and the asynq scheduler — with
// a Redis key held by SET NX PX and renewed while its holder lives. Every
// Ferry process already shares the queue's Redis (the embedded miniredis
// when there is one process), so the lease needs nothing else.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is one process's claim on a named lease.
type Lease struct {
	rdb   redis.UniversalClient
	key   string
	owner string
	ttl   time.Duration
}

// New returns a claim on key that lasts ttl unless renewed. The owner id
// names this process (host, pid and a random suffix) so that logs and
// Redis show who leads.
func New(rdb redis.UniversalClient, key string, ttl time.Duration) *Lease {
	b := make([]byte, 4)
	rand.Read(b)
	host, _ := os.Hostname()
	return &Lease{rdb: rdb, key: key, ttl: ttl, owner: fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))}
}

// Owner is this claim's owner id.
func (l *Lease) Owner() string { return l.owner }

// renew extends the lease only if this claim still holds it.
var renew = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)

// release deletes the lease only if this claim holds it.
var release = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// TryAcquire takes the lease if nobody holds it, or renews it if this claim
// does, and reports whether this claim holds it now.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	n, err := renew.Run(ctx, l.rdb, []string{l.key}, l.owner, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", l.key, err)
	}
	if n == 1 {
		return true, nil
	}
	ok, err := l.rdb.SetNX(ctx, l.key, l.owner, l.ttl).Result()
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", l.key, err)
	}
	return ok, nil
}

// Holder returns the owner id of whoever holds the lease ("" when free).
func (l *Lease) Holder(ctx context.Context) (string, error) {
	v, err := l.rdb.Get(ctx, l.key).Result()
	if err == redis.Nil {
		return "", nil
	}
	return v, err
}

// Release gives the lease up if this claim holds it.
func (l *Lease) Release(ctx context.Context) error {
	return release.Run(ctx, l.rdb, []string{l.key}, l.owner).Err()
}

// Run tries for the lease every ttl/3 until ctx ends. While this claim
// holds it, lead runs with a context that ends when the lease is lost (a
// renewal failed or found another holder) or ctx ends; Run waits for lead
// to return before trying again, and releases the lease on the way out.
func (l *Lease) Run(ctx context.Context, log *slog.Logger, lead func(context.Context)) {
	every := l.ttl / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	var (
		cancel context.CancelFunc
		done   chan struct{}
	)
	stop := func() {
		if cancel != nil {
			cancel()
			<-done
			cancel, done = nil, nil
		}
	}
	defer func() {
		stop()
		rctx, c := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer c()
		l.Release(rctx)
	}()
	for {
		held, err := l.TryAcquire(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("lease renewal failed", "lease", l.key, "error", err)
		}
		switch {
		case held && cancel == nil:
			log.Info("took the lease: this process runs the scheduler and reconcilers", "lease", l.key, "owner", l.owner)
			lctx, c := context.WithCancel(ctx)
			cancel = c // stop() calls it when the lease is lost or Run returns
			done = make(chan struct{})
			go func() { defer close(done); lead(lctx) }()
		case !held && cancel != nil:
			log.Warn("lost the lease", "lease", l.key, "owner", l.owner)
			stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
