package graph

import (
	"context"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/internal/trace"
)

const (
	// maxSubscribedIDs bounds the ids one migrationProgress subscription names.
	maxSubscribedIDs = 1000
	// defaultProgressEvery is how often a subscription reads the database.
	defaultProgressEvery = time.Second
	// progressFailures is how many reads in a row may fail before the
	// subscription ends with an error.
	progressFailures = 10
)

// progressKey is what a migration's progress looks like to a subscriber: a
// new key means "emit the row again". updated_at changes on every ent write;
// the other columns catch a write that kept the timestamp.
type progressKey struct {
	updated                          int64
	state                            ferry.MigrationState
	total, done, rate, lag, eta      int64
	lastError, failure               string
	lastSync, stateChanged, syncReqd int64
}

func keyOf(m *ent.Migration) progressKey {
	unix := func(t *time.Time) int64 {
		if t == nil {
			return 0
		}
		return t.UnixNano()
	}
	return progressKey{
		updated: m.UpdatedAt.UnixNano(), state: m.State,
		total: m.BytesTotal, done: m.BytesDone, rate: m.RateBps, lag: m.LagSeconds, eta: m.EtaSeconds,
		lastError: m.LastError, failure: m.FailureReason,
		lastSync: unix(m.LastSyncAt), stateChanged: unix(m.StateChangedAt), syncReqd: unix(m.SyncRequestedAt),
	}
}

// progressColumns are the columns a poll reads to decide what changed; only
// changed rows are then read whole.
var progressColumns = []string{
	migration.FieldID, migration.FieldUpdatedAt, migration.FieldState, migration.FieldBytesTotal,
	migration.FieldBytesDone, migration.FieldRateBps, migration.FieldLagSeconds, migration.FieldEtaSeconds,
	migration.FieldLastError, migration.FieldFailureReason, migration.FieldLastSyncAt,
	migration.FieldStateChangedAt, migration.FieldSyncRequestedAt,
}

// progressIDs checks and de-duplicates a subscription's ids.
func progressIDs(ids []int) ([]int, error) {
	if len(ids) > maxSubscribedIDs {
		return nil, ferry.Errorf(ferry.EINVALID, "a subscription may follow at most %d migrations, got %d ids; subscribe without ids to follow all of them", maxSubscribedIDs, len(ids))
	}
	if len(ids) == 0 {
		return nil, nil // all of the tenant's migrations
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// watchProgress polls the database every `every` for the migrations named by
// ids (all of the viewer's tenant when ids is nil) and sends a row on out
// whenever its progressKey changes. With ids, the first poll sends every row
// found (the subscriber's starting picture). The tenant interceptor below
// the queries confines them to the viewer in ctx: ids of another tenant
// simply match nothing. It returns when ctx ends (the client went away), and
// closes out.
func (r *Resolver) watchProgress(ctx context.Context, ids []int, every time.Duration, out chan<- *ent.Migration) {
	defer close(out)
	seen := map[int]progressKey{}
	first, failures := true, 0
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		changed, err := r.pollProgress(ctx, ids, seen, first && ids == nil)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			r.Log.WarnContext(ctx, "migration progress poll failed", "error", err.Error(), "failures", failures, "trace_id", trace.FromContext(ctx))
			if failures >= progressFailures {
				transport.AddSubscriptionError(ctx, &gqlerror.Error{
					Message:    "internal error (trace id " + trace.FromContext(ctx) + "); subscribe again",
					Extensions: map[string]any{"code": ferry.EINTERNAL, "traceId": trace.FromContext(ctx)},
				})
				return
			}
		} else {
			failures, first = 0, false
			for _, m := range changed {
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollProgress reads the light columns, compares them with seen, reads the
// changed rows whole and records them in seen. With baseline it records
// without returning anything.
func (r *Resolver) pollProgress(ctx context.Context, ids []int, seen map[int]progressKey, baseline bool) ([]*ent.Migration, error) {
	q := r.Client.Migration.Query().Order(ent.Asc(migration.FieldID))
	if ids != nil {
		q = q.Where(migration.IDIn(ids...))
	}
	light, err := q.Select(progressColumns...).All(ctx)
	if err != nil {
		return nil, err
	}
	var changed []int
	for _, m := range light {
		if k, ok := seen[m.ID]; ok && k == keyOf(m) {
			continue
		}
		if baseline {
			seen[m.ID] = keyOf(m)
			continue
		}
		changed = append(changed, m.ID)
	}
	var out []*ent.Migration
	for chunk := range slices.Chunk(changed, maxSubscribedIDs) {
		rows, err := r.Client.Migration.Query().Where(migration.IDIn(chunk...)).Order(ent.Asc(migration.FieldID)).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range rows {
			seen[m.ID] = keyOf(m)
		}
		out = append(out, rows...)
	}
	return out, nil
}
