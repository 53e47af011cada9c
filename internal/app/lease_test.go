package app_test

import (
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/app"
	"github.com/ferry-migrate/ferry/internal/redistest"
)

// Two processes of one installation (one Redis, one database) run the
// scheduler and the plans reconciler once between them: one holds the
// lease; when it stops, the other takes over.
func TestSchedulerRunsOnceAcrossReplicas(t *testing.T) {
	redisURL := redistest.Start(t)
	dir := t.TempDir()
	start := func() *testServer {
		return mustStart(t, func(c *app.Config) {
			c.RedisURL = redisURL
			c.KeysDir = dir + "/keys"
			c.DatabaseURL = databaseFor(t, dir)
			c.Workers = 1
			c.LeaseTTL = 600 * time.Millisecond
		})
	}
	a, b := start(), start()
	for _, ts := range []*testServer{a, b} {
		if err := ts.App.StartWorkers(); err != nil {
			t.Fatal(err)
		}
	}
	leader := func() []*testServer {
		var out []*testServer
		for _, ts := range []*testServer{a, b} {
			if ts.App.Leading() {
				out = append(out, ts)
			}
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(leader()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d processes lead, want exactly one", len(leader()))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	first := leader()[0]
	// The scheduler registered its entries (two hourly, one per minute) once, not once per process.
	for {
		entries, err := a.App.Queue.Inspector.SchedulerEntries()
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 3 {
			break
		}
		if len(entries) > 3 || time.Now().After(deadline) {
			t.Fatalf("scheduler entries = %d, want the 2 hourly tasks and the discovery one once", len(entries))
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	// Two seconds of renewals later, still one leader, the same.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if l := leader(); len(l) != 1 || l[0] != first {
			t.Fatalf("leadership moved or doubled while the leader lived")
		}
	}
	first.App.Close()
	other := a
	if first == a {
		other = b
	}
	deadline = time.Now().Add(10 * time.Second)
	for !other.App.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the other process never took the lease over")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}
