package wave

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// defaultWindow is how long a cutover window given by its start alone
// stays open.
const defaultWindow = 4 * time.Hour

// maxParallel bounds the cap (the lifecycle starts at most 500 at once).
const maxParallel = 500

// StartWave implements ferry.WaveService: it checks the settings, stores
// them with the resolved cutover window, marks every member queued (or
// no_agent) in the wave's order and enqueues the first tick, which starts
// the first members up to the cap, and one at the cutover time.
func (o *Orchestrator) StartWave(ctx context.Context, waveID int, req ferry.WaveStart) (ferry.WaveStartReport, error) {
	var rep ferry.WaveStartReport
	now := o.now()
	var at time.Time
	err := o.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		w, err := c.Wave.Query().Where(wave.ID(waveID)).WithPlan().WithMembers(func(q *ent.WaveMemberQuery) {
			q.WithHost(func(q *ent.HostQuery) { q.WithAgent() })
		}).Only(ctx)
		if ent.IsNotFound(err) {
			return ferry.Errorf(ferry.ENOTFOUND, "wave %d not found", waveID)
		}
		if err != nil {
			return err
		}
		if w.Status != wave.StatusPlanned {
			return ferry.Errorf(ferry.ECONFLICT, "wave %d (%s) was started already (status %s); pause or resume it instead", w.ID, w.Name, w.Status)
		}
		if len(w.Edges.Members) == 0 {
			return ferry.Errorf(ferry.EINVALID, "wave %d (%s) has no hosts", w.ID, w.Name)
		}
		settings, start, end, err := o.settings(w, req, now)
		if err != nil {
			return err
		}
		members := w.Edges.Members
		inWave := map[int]*ent.WaveMember{}
		for _, m := range members {
			inWave[m.Edges.Host.ID] = m
		}
		for hostID, t := range req.HostCutoverAt {
			if inWave[hostID] == nil {
				return ferry.Errorf(ferry.EINVALID, "hostCutoverAt: host %d is not a member of wave %d", hostID, w.ID)
			}
			if !t.After(now) {
				return ferry.Errorf(ferry.EINVALID, "hostCutoverAt: host %s's time %s is in the past (now %s)", inWave[hostID].Edges.Host.Name, t.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
			}
		}
		// The wave's order: the planner's (members as written), which
		// the ids follow.
		sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
		for i, m := range members {
			u := c.WaveMember.UpdateOneID(m.ID).SetQueuePosition(i + 1).SetRunMessage("")
			if t, ok := req.HostCutoverAt[m.Edges.Host.ID]; ok {
				u.SetCutoverAt(t.UTC())
			}
			if m.Edges.Host.Edges.Agent == nil {
				u.SetRunState(wavemember.RunStateNoAgent).SetRunMessage("no agent on " + m.Edges.Host.Name + ": install one; the host starts when it registers")
				rep.NoAgent = append(rep.NoAgent, m.Edges.Host.ID)
			} else {
				u.SetRunState(wavemember.RunStateQueued)
				rep.Queued = append(rep.Queued, m.Edges.Host.ID)
			}
			if err := u.Exec(ctx); err != nil {
				return err
			}
		}
		steps, err := manualSteps(req.ManualSteps)
		if err != nil {
			return err
		}
		upd := c.Wave.UpdateOneID(w.ID).SetStatus(wave.StatusReplicating).SetRunSettings(settings).SetRunStartedAt(now).SetManualSteps(steps).
			SetRunStartedBy(req.StartedBy).SetRunCutoverAt(start).SetApproverRole(req.ApproverRole).SetApprovedBy("").ClearApprovedAt().
			SetRunMessage("")
		if end.IsZero() {
			upd.ClearRunCutoverEndsAt()
		} else {
			upd.SetRunCutoverEndsAt(end)
		}
		if err := upd.Exec(ctx); err != nil {
			return err
		}
		at = start
		// The first members start in this transaction, so the report says
		// which did.
		if _, err := o.advance(ctx, c, w.ID); err != nil {
			return err
		}
		started, err := c.WaveMember.Query().Where(wavemember.HasWaveWith(wave.ID(w.ID)), wavemember.MigrationIDNotNil()).WithHost().All(ctx)
		if err != nil {
			return err
		}
		isStarted := map[int]bool{}
		for _, m := range started {
			rep.Started = append(rep.Started, m.Edges.Host.ID)
			isStarted[m.Edges.Host.ID] = true
		}
		var queued []int
		for _, id := range rep.Queued {
			if !isStarted[id] {
				queued = append(queued, id)
			}
		}
		rep.Queued = queued
		return nil
	}, func(ctx context.Context) {
		for _, t := range []time.Time{{}, at} {
			if err := o.enqueue(ctx, waveID, t); err != nil {
				o.log().ErrorContext(ctx, "enqueue wave tick", "wave", waveID, "error", err)
			}
		}
	})
	return rep, err
}

// settings checks a start's inputs and resolves its cutover window.
func (o *Orchestrator) settings(w *ent.Wave, req ferry.WaveStart, now time.Time) (map[string]any, time.Time, time.Time, error) {
	var start, end time.Time
	parallel := planParallel(w.Edges.Plan)
	if req.Parallel != nil {
		parallel = *req.Parallel
		switch {
		case parallel < 1:
			return nil, start, end, ferry.Errorf(ferry.EINVALID, "parallel %d: want at least 1 host at a time (leave it out for the plan's parallel_migrations, %d)", parallel, planParallel(w.Edges.Plan))
		case parallel > maxParallel:
			return nil, start, end, ferry.Errorf(ferry.EINVALID, "parallel %d: at most %d hosts replicate at once", parallel, maxParallel)
		}
	}
	switch {
	case req.CutoverAt != nil:
		start = req.CutoverAt.UTC()
		if !start.After(now) {
			return nil, start, end, ferry.Errorf(ferry.EINVALID, "cutoverAt %s is in the past (now %s): give a time to come", start.Format(time.RFC3339), now.Format(time.RFC3339))
		}
		end = start.Add(defaultWindow)
		if req.CutoverEndsAt != nil {
			end = req.CutoverEndsAt.UTC()
			if !end.After(start) {
				return nil, start, end, ferry.Errorf(ferry.EINVALID, "cutoverEndsAt %s is not after cutoverAt %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
			}
		}
	case strings.TrimSpace(req.CutoverWindows) != "":
		var err error
		if start, end, err = windowPeriod(req.CutoverWindows, now); err != nil {
			return nil, start, end, err
		}
	case w.CutoverAt != nil && w.CutoverAt.After(now):
		start = w.CutoverAt.UTC()
		end = start.Add(defaultWindow)
		if w.CutoverEndsAt != nil && w.CutoverEndsAt.After(start) {
			end = w.CutoverEndsAt.UTC()
		}
	case w.CutoverAt != nil:
		return nil, start, end, ferry.Errorf(ferry.EINVALID, "the plan's cutover time for wave %s (%s) has passed: give cutoverAt or cutoverWindows", w.Name, w.CutoverAt.UTC().Format(time.RFC3339))
	default:
		return nil, start, end, ferry.Errorf(ferry.EINVALID, "wave %s has no cutover time: give cutoverAt or cutoverWindows", w.Name)
	}
	if r := strings.TrimSpace(req.ApproverRole); r != "" {
		switch viewer.Role(r) {
		case viewer.RoleOperator, viewer.RoleConsultant, viewer.RoleAdmin, viewer.RoleOwner:
		default:
			return nil, start, end, ferry.Errorf(ferry.EINVALID, "approverRole %q: want operator, consultant, admin or owner", r)
		}
	}
	if err := ferry.CheckRPO(req.RPO); err != nil {
		return nil, start, end, err
	}
	if err := ferry.CheckRetention(req.KeepLast, req.KeepDaily); err != nil {
		return nil, start, end, err
	}
	hooks := make([]any, 0, len(req.Hooks))
	for i, h := range req.Hooks {
		if err := h.Check(fmt.Sprintf("hooks[%d]", i)); err != nil {
			return nil, start, end, err
		}
		if h.Kind == ferry.HookWebhook && h.Secret == "" {
			return nil, start, end, ferry.Errorf(ferry.EINVALID, "hooks[%d]: a webhook needs a secret: its deliveries are signed with it (X-Ferry-Signature)", i)
		}
		if h.Secret != "" {
			if o.Seal == nil {
				return nil, start, end, ferry.Errorf(ferry.EINVALID, "hooks[%d]: this server cannot keep a webhook secret", i)
			}
			sealed, err := o.Seal([]byte(h.Secret), w.TenantID)
			if err != nil {
				return nil, start, end, err
			}
			h.SecretSealed, h.Secret = sealed, ""
		}
		hooks = append(hooks, h)
	}
	s := map[string]any{"parallel": parallel, "hooks": hooks}
	if req.CloudAccountID != nil {
		s["cloudAccountId"] = *req.CloudAccountID
	}
	if rl := strings.TrimSpace(req.RateLimit); rl != "" {
		s["rateLimit"] = rl
	}
	if req.RPO > 0 {
		s["rpoSeconds"] = int(req.RPO / time.Second)
	}
	ret := map[string]any{}
	if req.KeepLast != nil {
		ret["keepLast"] = *req.KeepLast
	}
	if req.KeepDaily != nil {
		ret["keepDaily"] = *req.KeepDaily
	}
	if len(ret) > 0 {
		s["retention"] = ret
	}
	if req.CutoverWindows != "" {
		s["cutoverWindows"] = req.CutoverWindows
	}
	return s, start, end, nil
}

// maxManualSteps bounds a wave's manual runbook steps.
const maxManualSteps = 20

// manualSteps checks the manual steps of a start.
func manualSteps(names []string) ([]map[string]any, error) {
	if len(names) > maxManualSteps {
		return nil, ferry.Errorf(ferry.EINVALID, "manualSteps: at most %d, got %d", maxManualSteps, len(names))
	}
	out := []map[string]any{}
	for i, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || len(n) > 200 {
			return nil, ferry.Errorf(ferry.EINVALID, "manualSteps[%d]: want a name of 1 to 200 characters", i)
		}
		out = append(out, map[string]any{"name": n})
	}
	return out, nil
}

// stepsLeft names the manual steps not yet ticked off.
func stepsLeft(w *ent.Wave) []string {
	var out []string
	for _, s := range w.ManualSteps {
		if by, _ := s["doneBy"].(string); by == "" {
			name, _ := s["name"].(string)
			out = append(out, name)
		}
	}
	return out
}

// TickWaveStep implements ferry.WaveService.
func (o *Orchestrator) TickWaveStep(ctx context.Context, waveID, index int, by string) error {
	return o.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		w, err := getWave(ctx, c, waveID)
		if err != nil {
			return err
		}
		if index < 0 || index >= len(w.ManualSteps) {
			return ferry.Errorf(ferry.EINVALID, "wave %s has %d manual steps; there is no step %d", w.Name, len(w.ManualSteps), index)
		}
		if done, _ := w.ManualSteps[index]["doneBy"].(string); done != "" {
			return ferry.Errorf(ferry.ECONFLICT, "step %q was ticked off by %s already", w.ManualSteps[index]["name"], done)
		}
		steps := make([]map[string]any, len(w.ManualSteps))
		for i, s := range w.ManualSteps {
			steps[i] = map[string]any{}
			for k, v := range s {
				steps[i][k] = v
			}
		}
		steps[index]["doneBy"], steps[index]["doneAt"] = by, o.now().Format(time.RFC3339)
		return c.Wave.UpdateOneID(w.ID).SetManualSteps(steps).Exec(ctx)
	}, func(ctx context.Context) {
		if running2(ctx, o, waveID) {
			o.enqueue(ctx, waveID, time.Time{})
		}
	})
}

// planParallel is the plan's parallel_migrations (10 when it names none).
func planParallel(p *ent.Plan) int {
	if p != nil {
		if v, ok := p.Constraints["parallel_migrations"].(float64); ok && v >= 1 {
			return int(v)
		}
		if v, ok := p.Constraints["parallel_migrations"].(int); ok && v >= 1 {
			return v
		}
	}
	return 10
}

// PauseWave implements ferry.WaveService: no member starts or cuts over
// until resumed; what runs (a sync, a cutover under way) goes on.
func (o *Orchestrator) PauseWave(ctx context.Context, waveID int, by string) error {
	return o.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		w, err := getWave(ctx, c, waveID)
		if err != nil {
			return err
		}
		if !running(w.Status) {
			return ferry.Errorf(ferry.ECONFLICT, "wave %s is %s: only a running wave can be paused", w.Name, w.Status)
		}
		return c.Wave.UpdateOneID(w.ID).SetStatus(wave.StatusPaused).SetRunMessage("paused by " + by + ": no host starts or cuts over until resumed").Exec(ctx)
	}, nil)
}

// ResumeWave implements ferry.WaveService.
func (o *Orchestrator) ResumeWave(ctx context.Context, waveID int, by string) error {
	return o.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		w, err := getWave(ctx, c, waveID)
		if err != nil {
			return err
		}
		if w.Status != wave.StatusPaused {
			return ferry.Errorf(ferry.ECONFLICT, "wave %s is %s, not paused", w.Name, w.Status)
		}
		if err := c.Wave.UpdateOneID(w.ID).SetStatus(wave.StatusReplicating).SetRunMessage("resumed by " + by).Exec(ctx); err != nil {
			return err
		}
		_, err = o.advance(ctx, c, w.ID)
		return err
	}, func(ctx context.Context) { o.enqueue(ctx, waveID, time.Time{}) })
}

// ApproveWave implements ferry.WaveService.
func (o *Orchestrator) ApproveWave(ctx context.Context, waveID int, approver string) error {
	if strings.TrimSpace(approver) == "" {
		return ferry.Errorf(ferry.EINVALID, "an approval needs the approver's name")
	}
	return o.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		w, err := getWave(ctx, c, waveID)
		if err != nil {
			return err
		}
		if w.ApproverRole == "" {
			return ferry.Errorf(ferry.ECONFLICT, "wave %s needs no approval", w.Name)
		}
		if w.ApprovedBy != "" {
			return ferry.Errorf(ferry.ECONFLICT, "wave %s was approved by %s already", w.Name, w.ApprovedBy)
		}
		if v := viewer.FromContext(ctx); v == nil || !v.Can(viewer.Role(w.ApproverRole)) {
			return ferry.Errorf(ferry.EFORBIDDEN, "the cutover of wave %s must be approved by a user with role %s (or above)", w.Name, w.ApproverRole)
		}
		return c.Wave.UpdateOneID(w.ID).SetApprovedBy(approver).SetApprovedAt(o.now()).Exec(ctx)
	}, func(ctx context.Context) { o.enqueue(ctx, waveID, time.Time{}) })
}

// SetHostCutover implements ferry.WaveService.
func (o *Orchestrator) SetHostCutover(ctx context.Context, waveID, hostID int, at *time.Time) error {
	var when time.Time
	err := o.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		w, err := getWave(ctx, c, waveID)
		if err != nil {
			return err
		}
		m, err := c.WaveMember.Query().Where(wavemember.HasWaveWith(wave.ID(w.ID)), wavemember.HasHostWith(host.ID(hostID))).Only(ctx)
		if ent.IsNotFound(err) {
			return ferry.Errorf(ferry.ENOTFOUND, "host %d is not a member of wave %s", hostID, w.Name)
		}
		if err != nil {
			return err
		}
		switch m.RunState {
		case wavemember.RunStateCuttingOver, wavemember.RunStateCutOver, wavemember.RunStateRolledBack, wavemember.RunStateFailed:
			return ferry.Errorf(ferry.ECONFLICT, "host %d is %s: its cutover time can no longer change", hostID, m.RunState)
		}
		u := c.WaveMember.UpdateOneID(m.ID)
		if at == nil {
			return u.ClearCutoverAt().Exec(ctx)
		}
		if !at.After(o.now()) {
			return ferry.Errorf(ferry.EINVALID, "cutover time %s is in the past (now %s)", at.UTC().Format(time.RFC3339), o.now().Format(time.RFC3339))
		}
		when = at.UTC()
		if m.RunState == wavemember.RunStateHeld {
			u.SetRunState(wavemember.RunStateStarted).SetRunMessage("rescheduled to " + when.Format(time.RFC3339))
		}
		return u.SetCutoverAt(when).Exec(ctx)
	}, func(ctx context.Context) {
		if running2(ctx, o, waveID) {
			o.enqueue(ctx, waveID, when)
		}
	})
	return err
}

func running2(ctx context.Context, o *Orchestrator, id int) bool {
	w, err := o.Client.Wave.Get(ctx, id)
	return err == nil && running(w.Status)
}

func running(s wave.Status) bool {
	for _, r := range Running {
		if s == r {
			return true
		}
	}
	return false
}

func getWave(ctx context.Context, c *ent.Client, id int) (*ent.Wave, error) {
	w, err := c.Wave.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "wave %d not found", id)
	}
	return w, err
}
