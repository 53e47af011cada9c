package jobs_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/jobs"
)

// BenchmarkEnqueueToStart (issue 11's figure): 1,000 tasks enqueued at once
// on a real redis-server, one worker process's asynq server with the
// `ferry worker` default concurrency (8) and a handler that only notes the
// time: how long each task waits from its enqueue to its handler's start
// (p50, p99) and how many the worker starts per second. Each iteration is
// one burst of 1,000.
//
//	go test -run '^$' -bench BenchmarkEnqueueToStart -benchtime 3x ./jobs/
func BenchmarkEnqueueToStart(b *testing.B) {
	const burst = 1000
	q, err := jobs.Open(redistest.Start(b))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	var mu sync.Mutex
	var waits []time.Duration
	done := make(chan struct{}, burst)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(ctx context.Context, t *asynq.Task) error {
		at := time.Unix(0, int64(binary.BigEndian.Uint64(t.Payload())))
		mu.Lock()
		waits = append(waits, time.Since(at))
		mu.Unlock()
		done <- struct{}{}
		return nil
	})
	srv := jobs.NewServer(q, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	var p50, p99, rate float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		waits = waits[:0]
		mu.Unlock()
		start := time.Now()
		for j := 0; j < burst; j++ {
			p := make([]byte, 8)
			binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
			if _, err := q.Client.Enqueue(asynq.NewTask("bench:noop", p), asynq.Queue("default"), asynq.Retention(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
		for j := 0; j < burst; j++ {
			<-done
		}
		elapsed := time.Since(start)
		mu.Lock()
		w := slices.Clone(waits)
		mu.Unlock()
		slices.Sort(w)
		p50 += float64(w[len(w)/2].Milliseconds())
		p99 += float64(w[len(w)*99/100].Milliseconds())
		rate += burst / elapsed.Seconds()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(p50/n, "p50-ms")
	b.ReportMetric(p99/n, "p99-ms")
	b.ReportMetric(rate/n, "tasks/s")
}

// BenchmarkEnqueueToStartIdle: one task at a time on an idle queue (a step
// enqueued when nothing else is waiting): the wait is asynq's poll of an
// empty queue.
//
//	go test -run '^$' -bench BenchmarkEnqueueToStartIdle -benchtime 20x ./jobs/
func BenchmarkEnqueueToStartIdle(b *testing.B) {
	q, err := jobs.Open(redistest.Start(b))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	waits := make(chan time.Duration, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(ctx context.Context, t *asynq.Task) error {
		waits <- time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(t.Payload()))))
		return nil
	})
	srv := jobs.NewServer(q, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	var w []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := make([]byte, 8)
		binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
		if _, err := q.Client.Enqueue(asynq.NewTask("bench:noop", p), asynq.Queue("default")); err != nil {
			b.Fatal(err)
		}
		w = append(w, <-waits)
	}
	b.StopTimer()
	slices.Sort(w)
	b.ReportMetric(float64(w[len(w)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(w[len(w)*99/100].Milliseconds()), "p99-ms")
}
