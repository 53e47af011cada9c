package lease_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferry-migrate/ferry/internal/lease"
	"github.com/ferry-migrate/ferry/internal/redistest"
)

func client(t *testing.T) redis.UniversalClient {
	o, err := redis.ParseURL(redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	a := lease.New(rdb, "ferry:lease:test", 2*time.Second)
	b := lease.New(rdb, "ferry:lease:test", 2*time.Second)
	if ok, err := a.TryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a: %v, %v", ok, err)
	}
	if ok, err := b.TryAcquire(ctx); ok || err != nil {
		t.Fatalf("b took a held lease: %v, %v", ok, err)
	}
	if ok, _ := a.TryAcquire(ctx); !ok {
		t.Fatalf("a could not renew its own lease")
	}
	// b may not release a's lease.
	b.Release(ctx)
	if h, _ := a.Holder(ctx); h != a.Owner() {
		t.Fatalf("holder after b's release = %q, want %q", h, a.Owner())
	}
	a.Release(ctx)
	if ok, _ := b.TryAcquire(ctx); !ok {
		t.Fatalf("b could not take a released lease")
	}
}

// A holder that dies without releasing loses the lease when it expires,
// and another process's Run takes over.
func TestRunTakesOverAfterExpiry(t *testing.T) {
	rdb := client(t)
	ctx := context.Background()
	dead := lease.New(rdb, "ferry:lease:run", 600*time.Millisecond)
	if ok, _ := dead.TryAcquire(ctx); !ok {
		t.Fatal("first claim failed")
	}
	alive := lease.New(rdb, "ferry:lease:run", 600*time.Millisecond)
	var leading atomic.Int32
	rctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		alive.Run(rctx, slog.New(slog.DiscardHandler), func(ctx context.Context) {
			leading.Add(1)
			<-ctx.Done()
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for leading.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the live process never took over the expired lease")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if h, _ := alive.Holder(ctx); h != alive.Owner() {
		t.Fatalf("holder = %q", h)
	}
	cancel()
	<-finished
	if h, _ := alive.Holder(ctx); h != "" {
		t.Fatalf("Run left the lease held by %q after stopping", h)
	}
	if n := leading.Load(); n != 1 {
		t.Fatalf("lead ran %d times, want once", n)
	}
}
