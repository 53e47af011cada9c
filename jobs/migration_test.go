package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent/migration"
)

func TestAllowedActions(t *testing.T) {
	cases := []struct {
		state migration.State
		want  []string
	}{
		{migration.StatePending, nil},
		{migration.StatePreparing, nil},
		{migration.StateInitialSync, nil},
		{migration.StateSyncing, []string{ActionTestLaunch}},
		{migration.StateTestLaunched, []string{ActionTestLaunch, ActionRollback}},
		{migration.StateCutoverReady, []string{ActionTestLaunch, ActionCutover, ActionRollback}},
		{migration.StateCuttingOver, []string{ActionRollback}},
		{migration.StateCutOver, []string{ActionRollback}},
		{migration.StateRollingBack, nil},
		{migration.StateRolledBack, nil},
		{migration.StateFailed, []string{ActionRollback}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, AllowedActions(tc.state)); diff != "" {
			t.Errorf("AllowedActions(%s) (-want +got):\n%s", tc.state, diff)
		}
	}
}

func TestIllegalTransitionsAreConflictsThatSayWhy(t *testing.T) {
	cases := []struct {
		state  migration.State
		action string
		want   string
	}{
		{migration.StateSyncing, ActionCutover, "test-launch a recovery point first"},
		{migration.StateInitialSync, ActionTestLaunch, "initial sync reaches 100%"},
		{migration.StateSyncing, ActionRollback, "nothing has been launched yet"},
		{migration.StateRolledBack, ActionRollback, "already rolled back"},
		{migration.StateCutOver, ActionCutover, "already cutting over or cut over"},
	}
	for _, tc := range cases {
		err := CheckAction(tc.state, tc.action)
		if ferry.ErrorCode(err) != ferry.ECONFLICT {
			t.Errorf("%s from %s: code %q, want %s", tc.action, tc.state, ferry.ErrorCode(err), ferry.ECONFLICT)
			continue
		}
		if msg := ferry.ErrorMessage(err); !strings.Contains(msg, tc.want) {
			t.Errorf("%s from %s: message %q does not say %q", tc.action, tc.state, msg, tc.want)
		}
	}
}

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
