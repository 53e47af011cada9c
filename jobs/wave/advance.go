package wave

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/launch"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
)

// maxTestLaunches is how many failed test launches the wave tries before
// it holds a host for someone to look at.
const maxTestLaunches = 2

// Advance re-derives the wave's run from the database and moves it on in
// one transaction (SQLite serialises two ticks of the same wave). It
// returns when the wave should be looked at next: zero once it is over.
func (o *Orchestrator) Advance(ctx context.Context, waveID int) (time.Time, error) {
	var next time.Time
	err := o.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		var err error
		next, err = o.advance(ctx, c, waveID)
		return err
	}, nil)
	return next, err
}

// hostRun is what one tick learns about a member.
type hostRun struct {
	m        *ent.WaveMember
	mig      *ent.Migration
	state    wavemember.RunState
	msg      string
	failedCO bool // a cutover step of its migration failed
	tests    int  // failed test launches
	testBusy bool
}

func (o *Orchestrator) advance(ctx context.Context, c *ent.Client, waveID int) (time.Time, error) {
	w, err := c.Wave.Query().Where(wave.ID(waveID)).WithMembers(func(q *ent.WaveMemberQuery) {
		q.WithHost(func(q *ent.HostQuery) { q.WithAgent() })
	}).Only(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if !running(w.Status) && w.Status != wave.StatusPaused {
		return time.Time{}, nil
	}
	now := o.now()
	paused := w.Status == wave.StatusPaused
	runs, err := o.load(ctx, c, w.Edges.Members)
	if err != nil {
		return time.Time{}, err
	}
	parallel := planParallel(nil)
	if v, ok := w.RunSettings["parallel"].(float64); ok && v >= 1 {
		parallel = int(v)
	}
	active := 0
	for _, r := range runs {
		if r.mig != nil && initialCopy(r.mig.State) {
			active++
		}
	}
	left := stepsLeft(w)
	approved := (w.ApproverRole == "" || w.ApprovedBy != "") && len(left) == 0
	var end time.Time
	if w.RunCutoverEndsAt != nil {
		end = *w.RunCutoverEndsAt
	}
	next := now.Add(o.tick())
	waitApproval := false
	for _, r := range runs {
		at := o.cutoverAt(w, r.m)
		if at.After(now) && at.Before(next) {
			next = at
		}
		if r.mig == nil {
			if err := o.startMember(ctx, c, w, r, paused, &active, parallel); err != nil {
				return time.Time{}, err
			}
			continue
		}
		due := !now.Before(at)
		closed := !end.IsZero() && now.After(end) && r.m.CutoverAt == nil
		switch st := r.mig.State; {
		case initialCopy(st):
			r.state, r.msg = wavemember.RunStateStarted, "initial sync"
		case st == ferry.MigrationSyncing && r.tests >= maxTestLaunches:
			r.state, r.msg = wavemember.RunStateHeld, fmt.Sprintf("test launch failed %d times (%s): test-launch it by hand or roll it back", r.tests, r.mig.LastError)
		case st == ferry.MigrationSyncing, st == ferry.MigrationTestLaunched:
			r.state, r.msg = wavemember.RunStateStarted, "test launch"
			if st == ferry.MigrationSyncing && !paused && !r.testBusy {
				if _, err := o.Migrations.TestLaunch(ctx, r.mig.ID, nil); err != nil {
					if ferry.ErrorCode(err) == "" {
						return time.Time{}, err
					}
					r.msg = "test launch not started: " + ferry.ErrorMessage(err)
				} else {
					r.msg = "test launch started"
				}
			}
		case st == ferry.MigrationCutoverReady && r.failedCO:
			reason := strings.TrimPrefix(r.mig.LastError, "cutover failed, the source is still authoritative: ")
			if err := o.Migrations.Rollback(ctx, r.mig.ID); err != nil {
				return time.Time{}, fmt.Errorf("roll back %s: %w", r.m.Edges.Host.Name, err)
			}
			r.state, r.msg = wavemember.RunStateRolledBack, "cutover failed ("+reason+"); rolled back alone, the source stays authoritative"
		case st == ferry.MigrationCutoverReady && !due:
			r.state, r.msg = wavemember.RunStateStarted, "ready; cuts over at "+at.Format(time.RFC3339)
		case st == ferry.MigrationCutoverReady && closed:
			r.state, r.msg = wavemember.RunStateHeld, "the cutover window closed at "+end.Format(time.RFC3339)+" before it could cut over: give it a cutover time"
		case st == ferry.MigrationCutoverReady && !approved:
			waitApproval = true
			r.state, r.msg = wavemember.RunStateStarted, "ready; the cutover waits for "+gate(w, left)
		case st == ferry.MigrationCutoverReady && paused:
			r.state, r.msg = wavemember.RunStateStarted, "ready; the wave is paused"
		case st == ferry.MigrationCutoverReady:
			if err := o.Migrations.RequestCutover(ctx, r.mig.ID); err != nil {
				return time.Time{}, fmt.Errorf("cut over %s: %w", r.m.Edges.Host.Name, err)
			}
			r.state, r.msg = wavemember.RunStateCuttingOver, "cutover requested at "+now.Format(time.RFC3339)
		case st == ferry.MigrationCuttingOver && r.mig.StateChangedAt != nil && now.Sub(*r.mig.StateChangedAt) > o.cutoverTimeout():
			if err := o.Migrations.Rollback(ctx, r.mig.ID); err != nil {
				return time.Time{}, fmt.Errorf("roll back %s: %w", r.m.Edges.Host.Name, err)
			}
			r.state, r.msg = wavemember.RunStateRolledBack, fmt.Sprintf("the cutover did not finish within %s (%s); rolled back alone", o.cutoverTimeout(), lastWords(r.mig))
		case st == ferry.MigrationCuttingOver:
			r.state, r.msg = wavemember.RunStateCuttingOver, r.m.RunMessage
		case st == ferry.MigrationCutOver:
			r.state, r.msg = wavemember.RunStateCutOver, "cut over"
		case st == ferry.MigrationFailed:
			if err := o.Migrations.Rollback(ctx, r.mig.ID); err != nil {
				return time.Time{}, fmt.Errorf("roll back %s: %w", r.m.Edges.Host.Name, err)
			}
			r.state, r.msg = wavemember.RunStateRolledBack, "failed ("+r.mig.FailureReason+"); rolled back alone"
		case st == ferry.MigrationRollingBack, st == ferry.MigrationRolledBack:
			r.state, r.msg = wavemember.RunStateRolledBack, r.m.RunMessage
			if r.m.RunState != wavemember.RunStateRolledBack {
				r.msg = "rolled back outside the wave"
			}
		}
		// Not ready when its time came: held and reported, never cut
		// over stale; it goes on once ready, inside the window.
		if due && r.state == wavemember.RunStateStarted && r.mig.State != ferry.MigrationCutoverReady {
			r.state, r.msg = wavemember.RunStateHeld, fmt.Sprintf("not ready at its cutover time %s (%s: %s)", at.Format(time.RFC3339), r.mig.State, r.msg)
			if closed {
				r.msg += "; the window closed at " + end.Format(time.RFC3339) + ": give it a cutover time"
			}
		}
	}
	for _, r := range runs {
		if r.msg = clip(r.msg); r.state != r.m.RunState || r.msg != r.m.RunMessage {
			if err := c.WaveMember.UpdateOneID(r.m.ID).SetRunState(r.state).SetRunMessage(r.msg).Exec(ctx); err != nil {
				return time.Time{}, err
			}
		}
	}
	status, msg, over := summarize(w, runs, now, end, paused, waitApproval, parallel)
	// A tick that finds nothing new writes nothing.
	if msg = clip(msg); status != w.Status || msg != w.RunMessage || over {
		u := c.Wave.UpdateOneID(w.ID).SetStatus(status).SetRunMessage(msg)
		if over {
			u.SetFinishedAt(now)
		}
		if err := u.Exec(ctx); err != nil {
			return time.Time{}, err
		}
	}
	if over {
		o.log().InfoContext(ctx, "wave over", "wave", w.ID, "status", status, "message", msg)
		return time.Time{}, nil
	}
	return next, nil
}

// load reads the members' migrations and what their steps and launches
// say, in four queries for the whole wave.
func (o *Orchestrator) load(ctx context.Context, c *ent.Client, members []*ent.WaveMember) ([]*hostRun, error) {
	sort.Slice(members, func(i, j int) bool {
		if members[i].QueuePosition != members[j].QueuePosition {
			return members[i].QueuePosition < members[j].QueuePosition
		}
		return members[i].ID < members[j].ID
	})
	var ids []int
	runs := make([]*hostRun, len(members))
	for i, m := range members {
		runs[i] = &hostRun{m: m, state: m.RunState, msg: m.RunMessage}
		if m.MigrationID != nil {
			ids = append(ids, *m.MigrationID)
		}
	}
	if len(ids) == 0 {
		return runs, nil
	}
	migs, err := c.Migration.Query().Where(migration.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[int]*ent.Migration{}
	for _, m := range migs {
		byID[m.ID] = m
	}
	failed, err := c.Step.Query().Where(step.MigrationIDIn(ids...), step.Kind("cutover"), step.StatusEQ(step.StatusFailed)).All(ctx)
	if err != nil {
		return nil, err
	}
	failedCO := map[int]bool{}
	for _, s := range failed {
		failedCO[s.MigrationID] = true
	}
	tests, err := c.Launch.Query().Where(launch.HasMigrationWith(migration.IDIn(ids...)), launch.KindEQ(launch.KindTest)).WithMigration().All(ctx)
	if err != nil {
		return nil, err
	}
	failedTests, busy := map[int]int{}, map[int]bool{}
	for _, l := range tests {
		id := l.Edges.Migration.ID
		switch l.Status {
		case launch.StatusFailed:
			failedTests[id]++
		case launch.StatusPending, launch.StatusRunning:
			busy[id] = true
		}
	}
	for _, r := range runs {
		if r.m.MigrationID == nil {
			continue
		}
		id := *r.m.MigrationID
		r.mig, r.failedCO, r.tests, r.testBusy = byID[id], failedCO[id], failedTests[id], busy[id]
		if r.mig == nil {
			r.m.MigrationID = nil // deleted: start it again
		}
	}
	return runs, nil
}

// initialCopy: the states that hold a slot of the cap.
func initialCopy(s ferry.MigrationState) bool {
	return s == ferry.MigrationPending || s == ferry.MigrationPreparing || s == ferry.MigrationInitialSync
}

// cutoverAt is the member's cutover time: its own, or the wave's.
func (o *Orchestrator) cutoverAt(w *ent.Wave, m *ent.WaveMember) time.Time {
	if m.CutoverAt != nil {
		return m.CutoverAt.UTC()
	}
	if w.RunCutoverAt != nil {
		return w.RunCutoverAt.UTC()
	}
	return time.Time{}
}

// startMember starts the migration of a member that has none yet, when
// the cap allows.
func (o *Orchestrator) startMember(ctx context.Context, c *ent.Client, w *ent.Wave, r *hostRun, paused bool, active *int, parallel int) error {
	h := r.m.Edges.Host
	switch {
	case h.Edges.Agent == nil:
		r.state, r.msg = wavemember.RunStateNoAgent, "no agent on "+h.Name+": install one; the host starts when it registers"
		return nil
	case paused || *active >= parallel:
		r.state = wavemember.RunStateQueued
		r.msg = fmt.Sprintf("queued: %d of %d hosts replicating", *active, parallel)
		if paused {
			r.msg = "queued: the wave is paused"
		}
		return nil
	}
	req := ferry.MigrationStart{HostIDs: []int{h.ID}, StartedBy: "wave " + w.Name + " (" + w.RunStartedBy + ")"}
	if v, ok := w.RunSettings["cloudAccountId"].(float64); ok {
		id := int(v)
		req.CloudAccountID = &id
	}
	if v, ok := w.RunSettings["rateLimit"].(string); ok {
		req.RateLimit = v
	}
	ids, err := o.Migrations.Start(ctx, req)
	var migID int
	switch {
	case ferry.ErrorCode(err) == ferry.ECONFLICT:
		// The host already migrates (started by hand): the wave adopts it.
		m, qerr := c.Migration.Query().Where(migration.HostID(h.ID), migration.StateNotIn(ferry.MigrationRolledBack, ferry.MigrationFailed)).First(ctx)
		if qerr != nil {
			return qerr
		}
		migID = m.ID
	case err != nil:
		return fmt.Errorf("start %s: %w", h.Name, err)
	default:
		migID = ids[0]
		*active++
	}
	mig, err := c.Migration.Get(ctx, migID)
	if err != nil {
		return err
	}
	settings := map[string]any{}
	for k, v := range mig.Settings {
		settings[k] = v
	}
	settings["wave"] = w.ID
	for _, k := range []string{"rpoSeconds", "retention"} {
		if v, ok := w.RunSettings[k]; ok {
			settings[k] = v
		}
	}
	if err := c.Migration.UpdateOneID(migID).SetSettings(settings).Exec(ctx); err != nil {
		return err
	}
	if err := c.WaveMember.UpdateOneID(r.m.ID).SetMigrationID(migID).Exec(ctx); err != nil {
		return err
	}
	r.m.MigrationID = &migID
	r.mig = mig
	r.state, r.msg = wavemember.RunStateStarted, fmt.Sprintf("migration %d started", migID)
	return nil
}

// summarize gives the wave's status and what it waits for; over when
// every member is done with.
func summarize(w *ent.Wave, runs []*hostRun, now, end time.Time, paused, waitApproval bool, parallel int) (wave.Status, string, bool) {
	by := map[wavemember.RunState][]string{}
	ready, started := 0, 0
	for _, r := range runs {
		name := r.m.Edges.Host.Name
		if r.state == wavemember.RunStateHeld || r.state == wavemember.RunStateRolledBack || r.state == wavemember.RunStateFailed {
			name += " (" + r.msg + ")"
		}
		by[r.state] = append(by[r.state], name)
		if r.mig != nil && r.state == wavemember.RunStateStarted {
			started++
			if r.mig.State == ferry.MigrationCutoverReady {
				ready++
			}
		}
	}
	n := len(runs)
	cut := len(by[wavemember.RunStateCutOver])
	gone := len(by[wavemember.RunStateRolledBack]) + len(by[wavemember.RunStateFailed])
	noAgent := len(by[wavemember.RunStateNoAgent])
	var parts []string
	if g := gate(w, stepsLeft(w)); g != "" && waitApproval {
		parts = append(parts, "the cutover waits for "+g)
	} else if g != "" {
		parts = append(parts, "the cutover needs "+g)
	}
	if l := by[wavemember.RunStateHeld]; len(l) > 0 {
		parts = append(parts, "held: "+names(l, "; "))
	}
	if l := by[wavemember.RunStateRolledBack]; len(l) > 0 {
		parts = append(parts, "rolled back: "+names(l, "; "))
	}
	if l := by[wavemember.RunStateFailed]; len(l) > 0 {
		parts = append(parts, "failed: "+names(l, "; "))
	}
	if l := by[wavemember.RunStateNoAgent]; len(l) > 0 {
		parts = append(parts, "no agent: "+names(l, ", "))
	}
	if q := len(by[wavemember.RunStateQueued]); q > 0 {
		parts = append(parts, fmt.Sprintf("%d queued behind the cap of %d", q, parallel))
	}
	msg := strings.Join(parts, ". ")
	// Over when every member is cut over, rolled back or failed; members
	// without an agent may still register until the window closes.
	windowOver := end.IsZero() || now.After(end)
	if cut+gone+noAgent == n && (noAgent == 0 || windowOver) && cut+gone > 0 {
		if cut == n {
			return wave.StatusDone, fmt.Sprintf("cut over: all %d hosts", n), true
		}
		return wave.StatusPartiallyCutOver, fmt.Sprintf("partially cut over: %d of %d hosts. %s", cut, n, msg), true
	}
	switch {
	case paused:
		return wave.StatusPaused, w.RunMessage, false
	case len(by[wavemember.RunStateCuttingOver]) > 0 || cut > 0:
		return wave.StatusCuttingOver, msg, false
	case started > 0 && ready == started && len(by[wavemember.RunStateQueued]) == 0:
		return wave.StatusReady, msg, false
	}
	return wave.StatusReplicating, msg, false
}

// gate says what the wave's cutover still waits for besides time: an
// approval, manual steps ("" when nothing).
func gate(w *ent.Wave, left []string) string {
	var parts []string
	if w.ApproverRole != "" && w.ApprovedBy == "" {
		parts = append(parts, "approval by a user with role "+w.ApproverRole)
	}
	if len(left) > 0 {
		parts = append(parts, "the runbook's manual steps: "+names(left, ", "))
	}
	return strings.Join(parts, " and ")
}

// lastWords says what a migration last reported.
func lastWords(m *ent.Migration) string {
	if m.LastError != "" {
		return m.LastError
	}
	return "no error reported: was the final pass refused by a must-succeed agent script?"
}

// names lists at most ten names and how many more.
func names(l []string, sep string) string {
	if len(l) <= 10 {
		return strings.Join(l, sep)
	}
	return strings.Join(l[:10], sep) + fmt.Sprintf("%s and %d more", sep, len(l)-10)
}

func clip(s string) string {
	if len(s) > 3900 {
		return s[:3900] + "…"
	}
	return s
}
