package cloud

import (
	"fmt"
	"sort"
	"time"
)

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
