package graph

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/agent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/jobs"
)

// clamp returns *n within [1, max], def when n is nil.
func clamp(n *int, def, max int) (int, error) {
	if n == nil {
		return def, nil
	}
	if *n < 1 || *n > max {
		return 0, ferry.Errorf(ferry.EINVALID, "first: %d is not between 1 and %d", *n, max)
	}
	return *n, nil
}

// finished are the migration states that hold no transfer: the rest are in
// flight.
var finished = []ferry.MigrationState{ferry.MigrationCutOver, ferry.MigrationRolledBack, ferry.MigrationFailed}

// tenantUsage loads the tenants and their usage with one aggregate query
// per table, whatever the number of tenants.
func tenantUsage(ctx context.Context, c *ent.Client, first int) ([]*model.TenantUsage, error) {
	ts, err := c.Tenant.Query().Order(ent.Asc(tenant.FieldName)).Limit(first).All(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(ts))
	out := make([]*model.TenantUsage, len(ts))
	at := map[int]*model.TenantUsage{}
	for i, t := range ts {
		ids[i] = t.ID
		out[i] = &model.TenantUsage{Tenant: t}
		at[t.ID] = out[i]
	}
	type row struct {
		TenantID int   `json:"tenant_id"`
		Count    int   `json:"count"`
		Sum      int64 `json:"sum"`
	}
	var rows []row
	if err := c.Host.Query().Where(host.TenantIDIn(ids...)).GroupBy(host.FieldTenantID).Aggregate(ent.Count()).Scan(ctx, &rows); err != nil {
		return nil, err
	}
	for _, r := range rows {
		at[r.TenantID].Hosts = r.Count
	}
	rows = nil
	if err := c.Agent.Query().Where(agent.TenantIDIn(ids...), agent.RevokedAtIsNil()).GroupBy(agent.FieldTenantID).Aggregate(ent.Count()).Scan(ctx, &rows); err != nil {
		return nil, err
	}
	for _, r := range rows {
		at[r.TenantID].Agents = r.Count
	}
	rows = nil
	if err := c.Migration.Query().Where(migration.TenantIDIn(ids...), migration.StateNotIn(finished...)).GroupBy(migration.FieldTenantID).Aggregate(ent.Count()).Scan(ctx, &rows); err != nil {
		return nil, err
	}
	for _, r := range rows {
		at[r.TenantID].MigrationsInFlight = r.Count
	}
	rows = nil
	if err := c.Migration.Query().Where(migration.TenantIDIn(ids...)).GroupBy(migration.FieldTenantID).Aggregate(ent.As(ent.Sum(migration.FieldBytesDone), "sum")).Scan(ctx, &rows); err != nil {
		return nil, err
	}
	for _, r := range rows {
		at[r.TenantID].BytesMoved = int(r.Sum)
	}
	return out, nil
}

// platformQueues reads every queue Ferry uses (and any other the Redis holds).
func platformQueues(q *jobs.Queue) ([]*model.QueueInfo, error) {
	names := map[string]bool{}
	for n := range jobs.Queues {
		names[n] = true
	}
	if more, err := q.Inspector.Queues(); err == nil {
		for _, n := range more {
			names[n] = true
		}
	}
	var out []*model.QueueInfo
	for _, n := range slices.Sorted(maps.Keys(names)) {
		qi, err := q.Inspector.GetQueueInfo(n)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			out = append(out, &model.QueueInfo{Name: n})
			continue
		}
		if err != nil {
			// The embedded queue (miniredis) has no MEMORY USAGE, which
			// GetQueueInfo needs: count each state's first 1,000 instead.
			out = append(out, countQueue(q, n))
			continue
		}
		out = append(out, &model.QueueInfo{Name: n, Pending: qi.Pending, Active: qi.Active, Scheduled: qi.Scheduled,
			Retry: qi.Retry, Archived: qi.Archived, ProcessedToday: qi.Processed, FailedToday: qi.Failed,
			LatencySeconds: qi.Latency.Seconds(), Paused: qi.Paused})
	}
	return out, nil
}

// countQueue counts up to 1,000 tasks per state of queue n.
func countQueue(q *jobs.Queue, n string) *model.QueueInfo {
	count := func(list func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error)) int {
		ts, _ := list(n, asynq.PageSize(1000))
		return len(ts)
	}
	i := q.Inspector
	qi := &model.QueueInfo{Name: n, Pending: count(i.ListPendingTasks), Active: count(i.ListActiveTasks),
		Scheduled: count(i.ListScheduledTasks), Retry: count(i.ListRetryTasks), Archived: count(i.ListArchivedTasks)}
	if days, err := i.History(n, 1); err == nil && len(days) == 1 {
		qi.ProcessedToday, qi.FailedToday = days[0].Processed, days[0].Failed
	}
	return qi
}

func failedTask(t *asynq.TaskInfo) *model.FailedTask {
	ft := &model.FailedTask{ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State.String(), LastError: t.LastErr,
		Retried: t.Retried, MaxRetry: t.MaxRetry}
	if !t.LastFailedAt.IsZero() {
		at := t.LastFailedAt.UTC()
		ft.LastFailedAt = &at
	}
	return ft
}

// failedTasks lists a queue's archived tasks, then those waiting to retry.
func failedTasks(q *jobs.Queue, queue string, first int) ([]*model.FailedTask, error) {
	if strings.TrimSpace(queue) == "" {
		return nil, ferry.Errorf(ferry.EINVALID, "queue: required")
	}
	var out []*model.FailedTask
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){q.Inspector.ListArchivedTasks, q.Inspector.ListRetryTasks} {
		if len(out) >= first {
			break
		}
		ts, err := list(queue, asynq.PageSize(first-len(out)))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			if _, ours := jobs.Queues[queue]; ours {
				return out, nil // one of Ferry's queues that has seen no task yet
			}
			return nil, ferry.Errorf(ferry.ENOTFOUND, "queue %q not found", queue)
		}
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			out = append(out, failedTask(t))
		}
	}
	return out, nil
}

// retryTask moves a failed task back to pending; a worker picks it up now.
func retryTask(q *jobs.Queue, queue, id string) (*model.FailedTask, error) {
	t, err := q.Inspector.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrQueueNotFound), errors.Is(err, asynq.ErrTaskNotFound):
		return nil, ferry.Errorf(ferry.ENOTFOUND, "task %s not found in queue %q", id, queue)
	case err != nil:
		return nil, err
	}
	if t.State != asynq.TaskStateArchived && t.State != asynq.TaskStateRetry {
		return nil, ferry.Errorf(ferry.ECONFLICT, "task %s is %s, not failed: only archived or retrying tasks are run again", id, t.State)
	}
	if err := q.Inspector.RunTask(queue, id); err != nil {
		return nil, err
	}
	if t, err = q.Inspector.GetTaskInfo(queue, id); err != nil {
		return nil, err
	}
	return failedTask(t), nil
}

// suspendTenant records the suspension (the Tenant hook checks who may, and
// that the platform operator's home tenant is never suspended).
func suspendTenant(ctx context.Context, c *ent.Client, id int, reason string, now time.Time) (*ent.Tenant, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, ferry.Errorf(ferry.EINVALID, "reason: say why the tenant is suspended (its users read it)")
	}
	t, err := c.Tenant.UpdateOneID(id).SetSuspendedAt(now.UTC()).SetSuspendReason(reason).Save(ctx)
	if ent.IsNotFound(err) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "tenant %d not found", id)
	}
	return t, err
}

func resumeTenant(ctx context.Context, c *ent.Client, id int) (*ent.Tenant, error) {
	t, err := c.Tenant.UpdateOneID(id).ClearSuspendedAt().SetSuspendReason("").Save(ctx)
	if ent.IsNotFound(err) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "tenant %d not found", id)
	}
	return t, err
}
