package cloud

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// RetentionPolicy keeps the newest KeepLast points, plus the newest point of
// each of the KeepDaily most recent calendar days (UTC, counting the day of
// "now"). The newest point is always kept.
type RetentionPolicy struct {
	KeepLast  int
	KeepDaily int
}

// DefaultRetention is what a migration keeps unless its settings say
// otherwise: a day of hourly passes and a week of dailies.
var DefaultRetention = RetentionPolicy{KeepLast: 24, KeepDaily: 7}

// ApplyRetention is retention for every provider and every caller: of
// points (one disk's, or a migration's recovery points each standing for
// all its disks), it deletes through del those that policy does not keep
// and that pinned does not hold on to (a launch uses them), and returns
// their ids, oldest first. A point del refuses with ErrConflict (the
// provider knows it in use) is kept; ErrNotFound counts as deleted. Any other
// failure stops it, returning what was deleted so far with the error.
// Errors: ErrInvalid (the policy), del's.
func ApplyRetention(ctx context.Context, points []RecoveryPoint, policy RetentionPolicy, now time.Time,
	pinned func(RecoveryPoint) bool, del func(context.Context, RecoveryPoint) error) ([]string, error) {
	expired, err := Expired(points, policy, now)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]RecoveryPoint, len(points))
	for _, p := range points {
		byID[p.ID] = p
	}
	var deleted []string
	for _, id := range expired {
		p := byID[id]
		if pinned != nil && pinned(p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		switch err := del(ctx, p); {
		case errors.Is(err, ErrConflict):
			continue
		case err != nil && !errors.Is(err, ErrNotFound):
			return deleted, fmt.Errorf("retention: delete point %s: %w", id, err)
		}
		deleted = append(deleted, id)
	}
	return deleted, nil
}

// Expired returns the ids of the points that policy does not keep, oldest
// first. points may be in any order and may belong to one disk only; the
// rule is the same for every provider:
//
//   - the newest KeepLast points are kept;
//   - for each of the KeepDaily most recent UTC calendar days (the day of now
//     and the KeepDaily-1 days before it) the newest point of that day is kept;
//   - the newest point overall is always kept, and so is any point stamped
//     after now (a skewed clock must not make retention delete fresh data).
//
// Errors: ErrInvalid for negative counts or a policy that keeps nothing.
func Expired(points []RecoveryPoint, policy RetentionPolicy, now time.Time) ([]string, error) {
	if policy.KeepLast < 0 || policy.KeepDaily < 0 {
		return nil, fmt.Errorf("retention policy keep-last %d keep-daily %d: counts must not be negative: %w",
			policy.KeepLast, policy.KeepDaily, ErrInvalid)
	}
	if policy.KeepLast == 0 && policy.KeepDaily == 0 {
		return nil, fmt.Errorf("retention policy keeps nothing (keep-last 0, keep-daily 0): %w", ErrInvalid)
	}
	if len(points) == 0 {
		return nil, nil
	}
	sorted := make([]RecoveryPoint, len(points))
	copy(sorted, points)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].CreatedAt.Before(sorted[j].CreatedAt) })

	keep := make([]bool, len(sorted))
	keep[len(sorted)-1] = true
	for i := len(sorted) - 1; i >= 0 && i >= len(sorted)-policy.KeepLast; i-- {
		keep[i] = true
	}
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	oldestDay := today.AddDate(0, 0, -(policy.KeepDaily - 1))
	seenDay := map[time.Time]bool{}
	for i := len(sorted) - 1; i >= 0; i-- {
		t := sorted[i].CreatedAt.UTC()
		if t.After(now) {
			keep[i] = true
			continue
		}
		if policy.KeepDaily == 0 {
			continue
		}
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		if day.Before(oldestDay) || seenDay[day] {
			continue
		}
		seenDay[day] = true
		keep[i] = true
	}
	var out []string
	for i, p := range sorted {
		if !keep[i] {
			out = append(out, p.ID)
		}
	}
	return out, nil
}
