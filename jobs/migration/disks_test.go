package migration

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry"
)

func TestTargetDiskIDRoundTrip(t *testing.T) {
	for _, name := range []string{"vda", "/dev/nvme0n1", "sd a", "../../etc", ""} {
		id := TargetDiskID(47244640257, name)
		got, ok := MigrationOfDisk(id)
		if !ok || got != 47244640257 {
			t.Errorf("TargetDiskID(%q) = %q: parsed back %d, %v", name, id, got, ok)
		}
		for _, c := range id {
			if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				t.Errorf("TargetDiskID(%q) = %q has %q", name, id, c)
			}
		}
	}
	if _, ok := MigrationOfDisk("i-123-disk"); ok {
		t.Error("a launched disk parsed as a migration's target disk")
	}
}

func TestDiskPassDone(t *testing.T) {
	at := func(s int) *time.Time { x := time.Date(2026, 11, 23, 12, 0, s, 0, time.UTC); return &x }
	cases := []struct {
		name            string
		started, synced *time.Time
		req             *time.Time
		want            bool
	}{
		{"started and verified after the request", at(2), at(5), at(1), true},
		{"a pass begun before the request finishes after it", at(0), at(5), at(1), false},
		{"session open, not verified yet", at(2), nil, at(1), false},
		{"verified before the current session", at(3), at(2), at(1), false},
		{"never started", nil, nil, at(1), false},
		{"no pass requested", at(2), at(3), nil, false},
	}
	for _, tc := range cases {
		d := ferry.MigrationDisk{StartedAt: tc.started, SyncedAt: tc.synced}
		if got := diskPassDone(d, tc.req); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Every step kind has an itinerary whose phases have distinct names, and
// every task type maps to one.
func TestItineraries(t *testing.T) {
	for _, typ := range Types {
		kind := typ[len("migration:"):]
		ph := Phases(kind)
		if len(ph) == 0 {
			t.Errorf("%s has no itinerary", typ)
		}
		seen := map[string]bool{}
		for _, p := range ph {
			if seen[p] {
				t.Errorf("%s: phase %s twice", kind, p)
			}
			seen[p] = true
		}
		if _, _, err := NewStepTask(kind, StepPayload{StepID: 1}, time.Time{}); err != nil {
			t.Errorf("NewStepTask(%s): %v", kind, err)
		}
	}
	if TaskID(7, 3) != "step:7:3" {
		t.Errorf("TaskID = %s", TaskID(7, 3))
	}
}

// The sync step's log keeps its newest lines only.
func TestPruneEventsKeepsTheNewest(t *testing.T) {
	e := newEnv(t, envOpts{})
	id := e.start()
	st := e.steps(id, KindPrepare)[0]
	r := &run{l: e.l, step: st, mig: e.mig(id)}
	for i := range 10 {
		r.event(e.ctx, "info", "follow", "line %d", i)
	}
	r.pruneEvents(e.ctx, 3)
	if diff := cmp.Diff([]string{"follow: line 7", "follow: line 8", "follow: line 9"}, e.log(st.ID)); diff != "" {
		t.Errorf("log after pruning (-want +got):\n%s", diff)
	}
}
