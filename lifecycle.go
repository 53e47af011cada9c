package ferry

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// MigrationState is where a host's migration stands (DESIGN.md §4). It is
// the type of Migration.state in the database (ent's GoType) and of the
// GraphQL enum MigrationState, so the lifecycle has one vocabulary from the
// row to the button.
type MigrationState string

// The states, in lifecycle order.
const (
	MigrationPending      MigrationState = "pending"
	MigrationPreparing    MigrationState = "preparing"
	MigrationInitialSync  MigrationState = "initial_sync"
	MigrationSyncing      MigrationState = "syncing"
	MigrationTestLaunched MigrationState = "test_launched"
	MigrationCutoverReady MigrationState = "cutover_ready"
	MigrationCuttingOver  MigrationState = "cutting_over"
	MigrationCutOver      MigrationState = "cut_over"
	MigrationRollingBack  MigrationState = "rolling_back"
	MigrationRolledBack   MigrationState = "rolled_back"
	MigrationFailed       MigrationState = "failed"
)

var migrationStates = []MigrationState{
	MigrationPending, MigrationPreparing, MigrationInitialSync, MigrationSyncing, MigrationTestLaunched,
	MigrationCutoverReady, MigrationCuttingOver, MigrationCutOver, MigrationRollingBack, MigrationRolledBack, MigrationFailed,
}

// MigrationStates lists every state in lifecycle order.
func MigrationStates() []MigrationState { return slices.Clone(migrationStates) }

// Values lists the states as strings (ent's enum contract).
func (MigrationState) Values() []string {
	out := make([]string, len(migrationStates))
	for i, s := range migrationStates {
		out[i] = string(s)
	}
	return out
}

// Valid reports whether s is one of the states.
func (s MigrationState) Valid() bool { return slices.Contains(migrationStates, s) }

// MarshalGQL writes the state as a GraphQL enum value.
func (s MigrationState) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *MigrationState) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("migration state must be a string, got %T", v)
	}
	if !MigrationState(str).Valid() {
		return fmt.Errorf("%q is not a migration state", str)
	}
	*s = MigrationState(str)
	return nil
}

// Finished reports whether nothing more happens to the migration by itself:
// it was rolled back or it failed (and only a rollback, for a failed one,
// can move it again).
func (s MigrationState) Finished() bool { return s == MigrationRolledBack || s == MigrationFailed }

// Replicating reports whether the agent may write the migration's target
// disks in state s: from the initial sync until the cutover is done.
func (s MigrationState) Replicating() bool {
	switch s {
	case MigrationInitialSync, MigrationSyncing, MigrationTestLaunched, MigrationCutoverReady, MigrationCuttingOver:
		return true
	}
	return false
}

// migrationTransitions is the state machine: the states each state may move
// to. Any state but rolled_back and failed may also move to failed (a task
// that can never succeed), which CanMoveTo adds.
var migrationTransitions = map[MigrationState][]MigrationState{
	MigrationPending:      {MigrationPreparing},
	MigrationPreparing:    {MigrationInitialSync},
	MigrationInitialSync:  {MigrationSyncing},
	MigrationSyncing:      {MigrationTestLaunched},
	MigrationTestLaunched: {MigrationTestLaunched, MigrationCutoverReady, MigrationSyncing, MigrationRollingBack},
	MigrationCutoverReady: {MigrationTestLaunched, MigrationCuttingOver, MigrationRollingBack},
	MigrationCuttingOver:  {MigrationCutOver, MigrationCutoverReady, MigrationRollingBack},
	MigrationCutOver:      {MigrationRollingBack},
	MigrationRollingBack:  {MigrationRolledBack},
	MigrationFailed:       {MigrationRollingBack},
}

// CanMoveTo reports whether the state machine allows s → to.
func (s MigrationState) CanMoveTo(to MigrationState) bool {
	if to == MigrationFailed {
		return s.Valid() && !s.Finished()
	}
	return slices.Contains(migrationTransitions[s], to)
}

// MigrationAction is something a user (or, later, a wave) asks of a
// migration through the lifecycle service.
type MigrationAction string

// The actions the state machine decides on. The strings are the API's
// Migration.allowedActions values.
const (
	ActionTestLaunch MigrationAction = "testLaunch"
	ActionCutover    MigrationAction = "cutover"
	ActionRollback   MigrationAction = "rollback"
)

var migrationActions = []MigrationAction{ActionTestLaunch, ActionCutover, ActionRollback}

// AllowedActions lists the actions state s allows, for buttons.
func (s MigrationState) AllowedActions() []MigrationAction {
	var out []MigrationAction
	for _, a := range migrationActions {
		if s.Allows(a) == nil {
			out = append(out, a)
		}
	}
	return out
}

// Allows says whether action a is legal in state s: nil, or an ECONFLICT
// *Error that tells the user what would make it legal.
func (s MigrationState) Allows(a MigrationAction) error {
	switch a {
	case ActionTestLaunch:
		switch s {
		case MigrationSyncing, MigrationTestLaunched, MigrationCutoverReady:
			return nil
		case MigrationPending, MigrationPreparing, MigrationInitialSync:
			return Errorf(ECONFLICT, "cannot test-launch a migration in state %s: wait until the initial sync reaches 100%% and a recovery point exists", s)
		}
		return Errorf(ECONFLICT, "cannot test-launch a migration in state %s: it is no longer syncing", s)
	case ActionCutover:
		switch s {
		case MigrationCutoverReady:
			return nil
		case MigrationCuttingOver, MigrationCutOver:
			return Errorf(ECONFLICT, "cannot cut over a migration in state %s: it is already cutting over or cut over", s)
		case MigrationTestLaunched:
			return Errorf(ECONFLICT, "cannot cut over yet: the test launch is still running its checks; cut over once it passed (state cutover_ready)")
		}
		return Errorf(ECONFLICT, "cannot cut over a migration in state %s: test-launch a recovery point first; cutover needs a passed test launch (state cutover_ready)", s)
	case ActionRollback:
		switch s {
		case MigrationTestLaunched, MigrationCutoverReady, MigrationCuttingOver, MigrationCutOver, MigrationFailed:
			return nil
		case MigrationRollingBack, MigrationRolledBack:
			return Errorf(ECONFLICT, "the migration is already %s", strings.ReplaceAll(string(s), "_", " "))
		}
		return Errorf(ECONFLICT, "cannot roll back a migration in state %s: nothing has been launched yet (rollback is for test-launched, cutover-ready, cutting-over and cut-over migrations)", s)
	}
	return Errorf(EINVALID, "unknown migration action %q", a)
}

// MigrationStart asks for the migration of hosts to a cloud account.
type MigrationStart struct {
	HostIDs []int
	// CloudAccountID is the target; nil means the built-in local cloud.
	CloudAccountID *int
	// RateLimit caps each agent's sending rate (e.g. "8Mbps"); empty: none.
	RateLimit string
	// StartedBy names the actor, for the migration's settings and log.
	StartedBy string
	// Quiesce is how the agent quiesces the source before the cutover's
	// final sync; nil: it is not quiesced.
	Quiesce *QuiescePlan
}

// QuiescePlan is what the user picks to quiesce a source for its cutover.
type QuiescePlan struct {
	Mode     string   // services, freeze or shutdown
	Services []string // systemd units (services)
	Mounts   []string // mount points (freeze)
}

// MigrationService is the migration lifecycle as the API and (later) the
// wave orchestrator see it. Every method checks the state machine and the
// inputs, records the change in the database and asks the workers for what
// follows once the change is committed; it joins the caller's transaction
// when the context carries one. Errors are *Error values (EINVALID,
// ENOTFOUND, ECONFLICT with a sentence saying what would make the request
// legal) or internal errors. Role checks are the caller's.
type MigrationService interface {
	// Start creates one pending migration per host and returns their ids in
	// the order of HostIDs (duplicates dropped). ECONFLICT when a host
	// already has an unfinished migration.
	Start(ctx context.Context, req MigrationStart) ([]int, error)
	// TestLaunch launches a copy of a recovery point (nil: the newest) and
	// returns the Launch id; the source keeps running and syncing.
	TestLaunch(ctx context.Context, migrationID int, recoveryPointID *int) (int, error)
	// RequestCutover asks for the final delta pass, then the cutover launch.
	RequestCutover(ctx context.Context, migrationID int) error
	// Rollback discards every launched copy; the source stays authoritative.
	Rollback(ctx context.Context, migrationID int) error
	// Approve records approver's consent to a step that waits for one (a
	// cutover whose settings ask for approval). ECONFLICT when no step of
	// the migration waits for an approval.
	Approve(ctx context.Context, migrationID int, approver string) error
}
