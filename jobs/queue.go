// Package jobs owns Ferry's background work: the asynq queue (embedded
// miniredis by default, Redis in production), task types and handlers, the
// scheduler and the reconciler that re-derives queued work from the database.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Queue is a connection to the task queue.
type Queue struct {
	Client    *asynq.Client
	Inspector *asynq.Inspector
	Redis     asynq.RedisConnOpt
	Embedded  bool

	rdb *redis.Client
	mr  *miniredis.Miniredis
}

// Open connects to redisURL, or, when it is empty, starts an in-process
// Redis-protocol server (miniredis) on a free loopback port. The embedded
// queue keeps nothing across restarts: the reconciler re-enqueues from the
// database, which is the source of truth.
func Open(redisURL string) (*Queue, error) {
	q := &Queue{}
	if redisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded queue: %w", err)
		}
		q.mr = mr
		q.Embedded = true
		redisURL = "redis://" + mr.Addr()
	}
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("FERRY_REDIS_URL: %w", err)
	}
	q.Redis = opt
	q.Client = asynq.NewClient(opt)
	q.Inspector = asynq.NewInspector(opt)
	ro, err := redis.ParseURL(redisURL)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("FERRY_REDIS_URL: %w", err)
	}
	q.rdb = redis.NewClient(ro)
	return q, nil
}

// Addr is the Redis address in use (useful to point `ferry worker` at the embedded queue in tests).
func (q *Queue) Addr() string {
	if o, ok := q.Redis.(asynq.RedisClientOpt); ok {
		return o.Addr
	}
	return ""
}

// Ping reports whether the queue's Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return q.rdb.Ping(ctx).Err()
}

// Close releases connections and stops the embedded server.
func (q *Queue) Close() {
	if q.Client != nil {
		q.Client.Close()
	}
	if q.Inspector != nil {
		q.Inspector.Close()
	}
	if q.rdb != nil {
		q.rdb.Close()
	}
	if q.mr != nil {
		q.mr.Close()
	}
}

// Queues and their weights: critical work (cutover, rollback) before sync
// before housekeeping.
var Queues = map[string]int{"critical": 6, "default": 3, "low": 1}

// NewServer returns an asynq server for q with the given concurrency, logging
// through log.
func NewServer(q *Queue, concurrency int, log *slog.Logger) *asynq.Server {
	return NewServerOf(q, concurrency, Queues, log)
}

// NewServerOf is NewServer serving queues (name → weight): Queues and the
// queues of the node this process is (a migration step bound to the state
// this process holds), or the node's alone.
func NewServerOf(q *Queue, concurrency int, queues map[string]int, log *slog.Logger) *asynq.Server {
	return asynq.NewServer(q.Redis, asynq.Config{
		Concurrency:     concurrency,
		Queues:          queues,
		ShutdownTimeout: 30 * time.Second,
		Logger:          Logger(log),
		// A task whose worker died (SIGKILL, a lost node) comes back through
		// asynq's recoverer once its lease expires; it runs again at once
		// rather than after the usual back-off, on whichever worker is alive.
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if errors.Is(err, asynq.ErrLeaseExpired) {
				return time.Second
			}
			return asynq.DefaultRetryDelayFunc(n, err, t)
		},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			log.ErrorContext(ctx, "task failed", "type", t.Type(), "task_id", id, "error", err)
		}),
	})
}

// Logger adapts log to asynq's logger, so that asynq's own lines (server,
// scheduler) come out in the same JSON format as every other line.
func Logger(log *slog.Logger) asynq.Logger { return asynqLogger{log} }

type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}
