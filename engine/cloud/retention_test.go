package cloud_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/google/go-cmp/cmp"
)

func TestExpired(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	at := func(id string, daysAgo int, hour int) cloud.RecoveryPoint {
		d := now.AddDate(0, 0, -daysAgo)
		return cloud.RecoveryPoint{ID: id, CreatedAt: time.Date(d.Year(), d.Month(), d.Day(), hour, 0, 0, 0, time.UTC)}
	}
	// Six points: two today, two yesterday, one three days ago, one ten days ago.
	points := []cloud.RecoveryPoint{
		at("d10", 10, 12), at("d3", 3, 8), at("d1a", 1, 6), at("d1b", 1, 20), at("d0a", 0, 1), at("d0b", 0, 9),
	}
	tests := []struct {
		name   string
		points []cloud.RecoveryPoint
		policy cloud.RetentionPolicy
		want   []string
	}{
		{"keep last 2", points, cloud.RetentionPolicy{KeepLast: 2}, []string{"d10", "d3", "d1a", "d1b"}},
		{"keep last 10 keeps all", points, cloud.RetentionPolicy{KeepLast: 10}, nil},
		{"daily 1 keeps newest of today", points, cloud.RetentionPolicy{KeepDaily: 1}, []string{"d10", "d3", "d1a", "d1b", "d0a"}},
		{"daily 2 keeps newest of today and yesterday", points, cloud.RetentionPolicy{KeepDaily: 2}, []string{"d10", "d3", "d1a", "d0a"}},
		{"daily 4 reaches three days back", points, cloud.RetentionPolicy{KeepDaily: 4}, []string{"d10", "d1a", "d0a"}},
		{"last 1 plus daily 3", points, cloud.RetentionPolicy{KeepLast: 1, KeepDaily: 3}, []string{"d10", "d3", "d1a", "d0a"}},
		{"last 3 plus daily 30", points, cloud.RetentionPolicy{KeepLast: 3, KeepDaily: 30}, []string{"d1a"}},
		{"newest kept even when old", []cloud.RecoveryPoint{at("old1", 40, 1), at("old2", 39, 1)}, cloud.RetentionPolicy{KeepDaily: 7}, []string{"old1"}},
		{"future point kept", []cloud.RecoveryPoint{at("a", 5, 1), at("b", 4, 1), {ID: "future", CreatedAt: now.Add(time.Hour)}}, cloud.RetentionPolicy{KeepLast: 1}, []string{"a", "b"}},
		{"unsorted input", []cloud.RecoveryPoint{at("d0b", 0, 9), at("d10", 10, 12), at("d0a", 0, 1)}, cloud.RetentionPolicy{KeepLast: 1}, []string{"d10", "d0a"}},
		{"no points", nil, cloud.RetentionPolicy{KeepLast: 1}, nil},
		{"other zone same instant", []cloud.RecoveryPoint{
			{ID: "x", CreatedAt: time.Date(2026, 11, 23, 0, 30, 0, 0, time.FixedZone("CET", 3600))}, // 22 Nov 23:30 UTC
			at("y", 0, 2),
		}, cloud.RetentionPolicy{KeepDaily: 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cloud.Expired(tt.points, tt.policy, now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Expired (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpiredInvalidPolicy(t *testing.T) {
	for _, p := range []cloud.RetentionPolicy{{}, {KeepLast: -1, KeepDaily: 3}, {KeepLast: 2, KeepDaily: -1}} {
		if _, err := cloud.Expired(nil, p, time.Now()); !errors.Is(err, cloud.ErrInvalid) {
			t.Errorf("Expired(%+v) error = %v, want ErrInvalid", p, err)
		}
	}
}
