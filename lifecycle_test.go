package ferry

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAllowedActions(t *testing.T) {
	cases := []struct {
		state MigrationState
		want  []MigrationAction
	}{
		{MigrationPending, nil},
		{MigrationPreparing, nil},
		{MigrationInitialSync, nil},
		{MigrationSyncing, []MigrationAction{ActionTestLaunch}},
		{MigrationTestLaunched, []MigrationAction{ActionTestLaunch, ActionRollback}},
		{MigrationCutoverReady, []MigrationAction{ActionTestLaunch, ActionCutover, ActionRollback}},
		{MigrationCuttingOver, []MigrationAction{ActionRollback}},
		{MigrationCutOver, []MigrationAction{ActionRollback}},
		{MigrationRollingBack, nil},
		{MigrationRolledBack, nil},
		{MigrationFailed, []MigrationAction{ActionRollback}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, tc.state.AllowedActions()); diff != "" {
			t.Errorf("AllowedActions(%s) (-want +got):\n%s", tc.state, diff)
		}
	}
}

func TestIllegalTransitionsAreConflictsThatSayWhy(t *testing.T) {
	cases := []struct {
		state  MigrationState
		action MigrationAction
		want   string
	}{
		{MigrationSyncing, ActionCutover, "test-launch a recovery point first"},
		{MigrationInitialSync, ActionTestLaunch, "initial sync reaches 100%"},
		{MigrationSyncing, ActionRollback, "nothing has been launched yet"},
		{MigrationRolledBack, ActionRollback, "already rolled back"},
		{MigrationCutOver, ActionCutover, "already cutting over or cut over"},
	}
	for _, tc := range cases {
		err := tc.state.Allows(tc.action)
		if ErrorCode(err) != ECONFLICT {
			t.Errorf("%s from %s: code %q, want %s", tc.action, tc.state, ErrorCode(err), ECONFLICT)
			continue
		}
		if msg := ErrorMessage(err); !strings.Contains(msg, tc.want) {
			t.Errorf("%s from %s: message %q does not say %q", tc.action, tc.state, msg, tc.want)
		}
	}
}

// Every action the state machine allows leads somewhere the transition
// table allows, and nothing leaves rolled_back.
func TestActionsAgreeWithTransitions(t *testing.T) {
	target := map[MigrationAction][]MigrationState{
		ActionTestLaunch: {MigrationTestLaunched},
		ActionCutover:    {MigrationCuttingOver},
		ActionRollback:   {MigrationRollingBack},
	}
	for _, s := range MigrationStates() {
		for _, a := range s.AllowedActions() {
			for _, to := range target[a] {
				if !s.CanMoveTo(to) {
					t.Errorf("%s allows %s but may not move to %s", s, a, to)
				}
			}
		}
		if MigrationRolledBack.CanMoveTo(s) {
			t.Errorf("rolled_back may move to %s", s)
		}
	}
	if !MigrationCutOver.CanMoveTo(MigrationFailed) || MigrationFailed.CanMoveTo(MigrationFailed) {
		t.Error("failed: reachable from any unfinished state, not from itself")
	}
	var s MigrationState
	if err := s.UnmarshalGQL("cut_over"); err != nil || s != MigrationCutOver {
		t.Errorf("UnmarshalGQL(cut_over) = %q, %v", s, err)
	}
	if err := s.UnmarshalGQL("done"); err == nil {
		t.Error("UnmarshalGQL accepted an unknown state")
	}
}
