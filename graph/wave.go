package graph

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/hookdelivery"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// waves is the wave service, for an operator or above (approveWave's
// approver role is checked by the service).
func (r *Resolver) waves(ctx context.Context) (ferry.WaveService, error) {
	if _, err := require(ctx, viewer.RoleOperator); err != nil {
		return nil, err
	}
	if r.Waves == nil {
		return nil, ferry.Errorf(ferry.ECONFLICT, "this server process does not run waves")
	}
	return r.Waves, nil
}

// waveStart translates startWave's input.
func waveStart(in *model.StartWaveInput) (ferry.WaveStart, error) {
	var req ferry.WaveStart
	if in == nil {
		return req, nil
	}
	req.Parallel, req.CutoverAt, req.CutoverEndsAt, req.CloudAccountID = in.Parallel, in.CutoverAt, in.CutoverEndsAt, in.CloudAccountID
	req.KeepLast, req.KeepDaily = in.KeepLast, in.KeepDaily
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	req.CutoverWindows, req.ApproverRole, req.RateLimit = str(in.CutoverWindows), str(in.ApproverRole), str(in.RateLimit)
	if in.RpoMinutes != nil {
		if *in.RpoMinutes < 1 || *in.RpoMinutes > 168*60 {
			return req, ferry.Errorf(ferry.EINVALID, "rpoMinutes %d: want 1 to 10080 (168 hours)", *in.RpoMinutes)
		}
		req.RPO = time.Duration(*in.RpoMinutes) * time.Minute
	}
	if len(in.HostCutovers) > 0 {
		req.HostCutoverAt = map[int]time.Time{}
		for _, h := range in.HostCutovers {
			req.HostCutoverAt[h.HostID] = h.At
		}
	}
	req.ManualSteps = in.ManualSteps
	for _, h := range in.Hooks {
		hk := ferry.Hook{Name: str(h.Name), Point: ferry.HookPoint(h.Point), Kind: ferry.HookKind(h.Kind), URL: str(h.URL), Script: str(h.Script), Secret: str(h.Secret)}
		if h.TimeoutSeconds != nil {
			hk.TimeoutSeconds = *h.TimeoutSeconds
		}
		if h.Retries != nil {
			hk.Retries = *h.Retries
		}
		if h.MustSucceed != nil {
			hk.MustSucceed = *h.MustSucceed
		}
		req.Hooks = append(req.Hooks, hk)
	}
	return req, nil
}

func nonNil(ids []int) []int {
	if ids == nil {
		return []int{}
	}
	return ids
}

// waveHooks are the wave's hooks without their secrets.
func waveHooks(w *ent.Wave) ([]*model.WaveHook, error) {
	out := []*model.WaveHook{}
	b, err := json.Marshal(w.RunSettings["hooks"])
	if err != nil {
		return nil, err
	}
	var hs []ferry.Hook
	if err := json.Unmarshal(b, &hs); err != nil {
		return out, nil
	}
	for _, h := range hs {
		out = append(out, &model.WaveHook{Name: h.Name, Point: string(h.Point), Kind: string(h.Kind), URL: h.URL, Script: h.Script,
			TimeoutSeconds: int(h.Timeout() / time.Second), Retries: h.Retries, MustSucceed: h.MustSucceed, Signed: h.SecretSealed != ""})
	}
	return out, nil
}

// members loads a wave's members with their hosts, in the wave's order.
func waveMembers(ctx context.Context, c *ent.Client, w *ent.Wave) ([]*ent.WaveMember, error) {
	return c.WaveMember.Query().Where(wavemember.HasWaveWith(wave.ID(w.ID))).WithHost().
		Order(ent.Asc(wavemember.FieldQueuePosition), ent.Asc(wavemember.FieldID)).All(ctx)
}

func memberMigrations(ctx context.Context, c *ent.Client, ms []*ent.WaveMember) (map[int]*ent.Migration, []int, error) {
	var ids []int
	for _, m := range ms {
		if m.MigrationID != nil {
			ids = append(ids, *m.MigrationID)
		}
	}
	out := map[int]*ent.Migration{}
	if len(ids) == 0 {
		return out, ids, nil
	}
	migs, err := c.Migration.Query().Where(migration.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range migs {
		out[m.ID] = m
	}
	return out, ids, nil
}

// waveProgress sums the members' run states and migrations in two queries.
func waveProgress(ctx context.Context, c *ent.Client, w *ent.Wave) (*model.WaveProgress, error) {
	ms, err := waveMembers(ctx, c, w)
	if err != nil {
		return nil, err
	}
	migs, _, err := memberMigrations(ctx, c, ms)
	if err != nil {
		return nil, err
	}
	p := &model.WaveProgress{Hosts: len(ms), CutoverEndsAt: w.RunCutoverEndsAt, NextCutoverAt: w.RunCutoverAt}
	if v, ok := w.RunSettings["parallel"].(float64); ok {
		n := int(v)
		p.Parallel = &n
	}
	counts := map[string]int{}
	now := time.Now()
	for _, m := range ms {
		counts[string(m.RunState)]++
		if m.CutoverAt != nil && m.CutoverAt.After(now) && (p.NextCutoverAt == nil || m.CutoverAt.Before(*p.NextCutoverAt) || !p.NextCutoverAt.After(now)) {
			p.NextCutoverAt = m.CutoverAt
		}
		if m.MigrationID == nil || migs[*m.MigrationID] == nil {
			continue
		}
		mig := migs[*m.MigrationID]
		p.BytesTotal += int(mig.BytesTotal)
		p.BytesDone += int(mig.BytesDone)
		p.MaxLagSeconds = max(p.MaxLagSeconds, int(mig.LagSeconds))
	}
	for _, s := range runStates {
		if counts[string(s)] > 0 {
			p.ByState = append(p.ByState, &model.WaveStateCount{State: string(s), Count: counts[string(s)]})
		}
	}
	if p.ByState == nil {
		p.ByState = []*model.WaveStateCount{}
	}
	return p, nil
}

// runStates in the order a member goes through them.
var runStates = []wavemember.RunState{wavemember.RunStateIdle, wavemember.RunStateNoAgent, wavemember.RunStateQueued, wavemember.RunStateStarted,
	wavemember.RunStateHeld, wavemember.RunStateCuttingOver, wavemember.RunStateCutOver, wavemember.RunStateRolledBack, wavemember.RunStateFailed}

const (
	runbookEvents     = 20   // per step
	runbookEventRows  = 8000 // read at most, newest first, for a whole wave
	runbookDeliveries = 20   // per host
)

// runbook is every member's steps with their newest events and hook
// deliveries, in five queries for the whole wave (no query per host).
func runbook(ctx context.Context, c *ent.Client, w *ent.Wave) ([]*model.RunbookHost, error) {
	ms, err := waveMembers(ctx, c, w)
	if err != nil {
		return nil, err
	}
	migs, ids, err := memberMigrations(ctx, c, ms)
	if err != nil {
		return nil, err
	}
	steps := map[int][]*model.RunbookStep{}
	deliveries := map[int][]*model.WaveHookDelivery{}
	if len(ids) > 0 {
		rows, err := c.Step.Query().Where(step.MigrationIDIn(ids...)).Order(ent.Asc(step.FieldID)).All(ctx)
		if err != nil {
			return nil, err
		}
		var stepIDs []int
		byStep := map[int]*model.RunbookStep{}
		for _, s := range rows {
			rs := &model.RunbookStep{Kind: s.Kind, Phase: s.Phase, Status: string(s.Status), CreatedAt: s.CreatedAt, FinishedAt: s.FinishedAt,
				LastError: s.LastError, Events: []*model.RunbookEvent{}}
			steps[s.MigrationID] = append(steps[s.MigrationID], rs)
			byStep[s.ID] = rs
			stepIDs = append(stepIDs, s.ID)
		}
		if len(stepIDs) > 0 {
			evs, err := c.StepEvent.Query().Where(stepevent.StepIDIn(stepIDs...)).Order(ent.Desc(stepevent.FieldID)).Limit(runbookEventRows).All(ctx)
			if err != nil {
				return nil, err
			}
			for _, ev := range evs {
				rs := byStep[ev.StepID]
				if len(rs.Events) < runbookEvents {
					rs.Events = append(rs.Events, &model.RunbookEvent{At: ev.CreatedAt, Level: string(ev.Level), Phase: ev.Phase, Message: ev.Message})
				}
			}
			for _, rs := range byStep {
				sort.SliceStable(rs.Events, func(i, j int) bool { return rs.Events[i].At.Before(rs.Events[j].At) })
			}
		}
		ds, err := c.HookDelivery.Query().Where(hookdelivery.MigrationIDIn(ids...)).Order(ent.Desc(hookdelivery.FieldID)).Limit(runbookDeliveries * len(ids)).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if len(deliveries[d.MigrationID]) < runbookDeliveries {
				deliveries[d.MigrationID] = append(deliveries[d.MigrationID], &model.WaveHookDelivery{At: d.CreatedAt, Point: d.Point, Hook: d.Hook,
					Kind: string(d.Kind), Target: d.Target, Attempt: d.Attempt, StatusCode: d.StatusCode, Ok: d.Ok, MustSucceed: d.MustSucceed,
					Output: d.Output, Error: d.Error, DurationMs: int(d.DurationMs)})
			}
		}
	}
	out := make([]*model.RunbookHost, 0, len(ms))
	for _, m := range ms {
		h := &model.RunbookHost{Member: m, Host: m.Edges.Host, Steps: []*model.RunbookStep{}, HookDeliveries: []*model.WaveHookDelivery{}}
		if m.MigrationID != nil {
			h.Migration = migs[*m.MigrationID]
			if s := steps[*m.MigrationID]; s != nil {
				h.Steps = s
			}
			if d := deliveries[*m.MigrationID]; d != nil {
				h.HookDeliveries = d
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// manualSteps are the wave's manual runbook steps.
func manualSteps(w *ent.Wave) []*model.WaveManualStep {
	out := []*model.WaveManualStep{}
	for i, s := range w.ManualSteps {
		st := &model.WaveManualStep{Index: i}
		st.Name, _ = s["name"].(string)
		st.DoneBy, _ = s["doneBy"].(string)
		if at, ok := s["doneAt"].(string); ok {
			if t, err := time.Parse(time.RFC3339, at); err == nil {
				st.DoneAt = &t
			}
		}
		out = append(out, st)
	}
	return out
}

// waveKey is what a wave's run looks like to a subscriber: the newest
// write to the wave, its members and their migrations, and how many.
type waveKey struct {
	wave, members, migrations int64
	n                         int
}

// readWaveKey reads the key in three queries (the wave, its members'
// update times and migration ids, those migrations' update times).
func readWaveKey(ctx context.Context, c *ent.Client, id int) (*ent.Wave, waveKey, error) {
	var k waveKey
	w, err := c.Wave.Get(ctx, id)
	if err != nil {
		return nil, k, err
	}
	k.wave = w.UpdatedAt.UnixNano()
	ms, err := c.WaveMember.Query().Where(wavemember.HasWaveWith(wave.ID(id))).Select(wavemember.FieldUpdatedAt, wavemember.FieldMigrationID).All(ctx)
	if err != nil {
		return nil, k, err
	}
	var ids []int
	for _, m := range ms {
		k.members = max(k.members, m.UpdatedAt.UnixNano())
		if m.MigrationID != nil {
			ids = append(ids, *m.MigrationID)
		}
	}
	k.n = len(ms)
	if len(ids) > 0 {
		migs, err := c.Migration.Query().Where(migration.IDIn(ids...)).Select(migration.FieldUpdatedAt).All(ctx)
		if err != nil {
			return nil, k, err
		}
		for _, m := range migs {
			k.migrations = max(k.migrations, m.UpdatedAt.UnixNano())
		}
	}
	return w, k, nil
}

// watchWave emits the wave on out at once and after every change, until
// ctx ends or reads keep failing.
func (r *Resolver) watchWave(ctx context.Context, id int, first *ent.Wave, key waveKey, every time.Duration, out chan<- *ent.Wave) {
	defer close(out)
	select {
	case out <- first:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w, k, err := readWaveKey(ctx, r.Client, id)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if failures++; failures >= progressFailures {
				r.Log.ErrorContext(ctx, "waveProgress: giving up", "wave", id, "error", err)
				return
			}
			continue
		}
		failures = 0
		if k == key {
			continue
		}
		key = k
		select {
		case out <- w:
		case <-ctx.Done():
			return
		}
	}
}
