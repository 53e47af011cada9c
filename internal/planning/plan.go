package planning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"gopkg.in/yaml.v3"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/i18n"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/planner"
)

// InlineHosts is the largest estate a request plans (or assesses) itself;
// larger ones go to the queue. At 2,000 hosts loading, planning and writing
// take well under a second on the reference machine (the planner alone is
// about 0.1 s; see docs/bench/planner.md), which a user waits for happily
// and which keeps SQLite's single writer busy only briefly. 20,000 hosts
// take several seconds: too long to hold a request and the write lock.
var InlineHosts = 2000

// batch is how many rows one INSERT carries (SQLite allows 32,766 bound
// values; a member row has about ten).
const batch = 1000

// DecodeStoredConfig is DecodeConfig for the document stored on a plan:
// rates an earlier Ferry stored keep the reading they had then
// (planner.UpgradeStoredRates).
func DecodeStoredConfig(doc map[string]any) (*planner.Config, error) {
	return DecodeConfig(planner.UpgradeStoredRates(doc))
}

// DecodeConfig turns a plan.yaml document (a generatePlan input) into
// constraints and rules, validating them as `ferry plan` does. Errors are
// planner.Problems (or a YAML error) naming the field.
func DecodeConfig(doc map[string]any) (*planner.Config, error) {
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("constraints: %w", err)
	}
	cfg, err := planner.ReadConfig(bytes.NewReader(b))
	var p planner.Problems
	if err != nil && !errors.As(err, &p) {
		// A YAML error names a line of a document the user never saw: find
		// the key it is about by decoding one key at a time.
		keys := make([]string, 0, len(doc))
		for k := range doc {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kb, _ := yaml.Marshal(map[string]any{k: doc[k]})
			dec := yaml.NewDecoder(bytes.NewReader(kb))
			dec.KnownFields(true)
			var one planner.Config
			if kerr := dec.Decode(&one); kerr != nil {
				msg := kerr.Error()
				if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg[:i], "line ") {
					msg = msg[strings.Index(msg, ": ")+2:]
					if j := strings.Index(msg, ": "); j >= 0 && strings.HasPrefix(msg, "line ") {
						msg = msg[j+2:]
					}
				}
				p = append(p, k+": "+msg)
			}
		}
		if len(p) > 0 {
			return nil, p
		}
	}
	return cfg, err
}

// InputError reports an error a user can fix (bad constraints, bad estate
// data) as ferry.EINVALID with every problem listed; anything else is nil.
func InputError(err error) *ferry.Error {
	var p planner.Problems
	if errors.As(err, &p) {
		return ferry.Errorf(ferry.EINVALID, "%s", strings.Join(p, "; "))
	}
	if err != nil && strings.HasPrefix(err.Error(), "constraints") {
		return ferry.Errorf(ferry.EINVALID, "%s", err.Error())
	}
	return nil
}

// Generate builds plan planID from the tenant's estate and writes its waves,
// members and report. ctx must carry the tenant's viewer. It is idempotent:
// a plan that is already ready, infeasible or failed is left alone, and a
// re-run of a queued or running plan replaces whatever an interrupted run
// wrote, in one transaction. Input problems mark the plan failed with the
// problems listed and come back as a *ferry.Error; other errors (database)
// leave it running for a retry.
func Generate(ctx context.Context, c *ent.Client, planID int, now func() time.Time) error {
	p, err := c.Plan.Get(ctx, planID)
	if err != nil {
		return fmt.Errorf("plan %d: %w", planID, err)
	}
	if p.Status != plan.StatusQueued && p.Status != plan.StatusRunning {
		return nil
	}
	if err := c.Plan.UpdateOneID(planID).SetStatus(plan.StatusRunning).SetStartedAt(now()).Exec(ctx); err != nil {
		return fmt.Errorf("plan %d: mark running: %w", planID, err)
	}
	fail := func(err error) error {
		fe := InputError(err)
		if fe == nil {
			return err
		}
		var probs []string
		var pp planner.Problems
		if errors.As(err, &pp) {
			probs = pp
		} else {
			probs = []string{fe.Message}
		}
		if uerr := c.Plan.UpdateOneID(planID).SetStatus(plan.StatusFailed).SetError(truncate(fe.Message, 4000)).
			SetProblems(probs).SetFinishedAt(now()).Exec(ctx); uerr != nil {
			return fmt.Errorf("plan %d: mark failed: %w", planID, uerr)
		}
		return fe
	}
	cfg, err := DecodeStoredConfig(p.Constraints)
	if err != nil {
		return fail(err)
	}
	// One read transaction for the whole load: the pages then come from one
	// snapshot (SQLite WAL), so a host deleted half-way cannot leave a
	// connection pointing at nothing.
	var est *planner.Estate
	err = readSnapshot(ctx, c, func(rc *ent.Client) (err error) {
		est, err = LoadEstate(ctx, rc, true)
		return err
	})
	if err != nil {
		return err
	}
	if len(est.Hosts) == 0 {
		return fail(planner.Problems{"estate: the tenant has no hosts yet; import or discover some first"})
	}
	// Hosts assessed not ready for the plan's target count in each wave's risk.
	var notReady []struct {
		Host int `json:"host_id"`
	}
	if err := c.Assessment.Query().Where(assessment.Target(p.Target), assessment.ReadinessEQ(assessment.ReadinessNotReady)).
		Select(assessment.FieldHostID).Scan(ctx, &notReady); err != nil {
		return fmt.Errorf("load assessments: %w", err)
	}
	cfg.NotReady = make(map[string]string, len(notReady))
	for _, a := range notReady {
		cfg.NotReady[HostID(a.Host)] = "not ready for " + p.Target
	}
	pl, err := planner.Build(est, cfg.Rules, cfg.Constraints)
	if err != nil {
		return fail(nameProblems(err, est))
	}
	return withTx(ctx, c, func(tx *ent.Client) error {
		if err := writePlan(ctx, tx, p, pl, nil, now); err != nil {
			return err
		}
		return writeSuggestions(ctx, tx, p.TenantID, est, pl.Suggestions)
	})
}

// nameProblems makes the planner's problems about stored data readable:
// "host 34359738369: ..." becomes "host db01 (id 34359738369): ...", and
// connection problems name the connection's row by its hosts.
func nameProblems(err error, est *planner.Estate) error {
	var p planner.Problems
	if !errors.As(err, &p) {
		return err
	}
	names := make(map[string]string, len(est.Hosts))
	for i := range est.Hosts {
		names[est.Hosts[i].ID] = est.Hosts[i].Name
	}
	out := make(planner.Problems, len(p))
	for i, s := range p {
		if rest, ok := strings.CutPrefix(s, "host "); ok {
			if id, tail, ok := strings.Cut(rest, ": "); ok && names[id] != "" {
				s = fmt.Sprintf("host %s (id %s): %s", names[id], id, tail)
			}
		} else if strings.HasPrefix(s, "connections[") {
			s = "stored " + s
		}
		out[i] = s
	}
	return out
}

// readSnapshot runs fn in a transaction that is rolled back (it only
// reads), or in the caller's transaction when c already is one.
func readSnapshot(ctx context.Context, c *ent.Client, fn func(*ent.Client) error) error {
	tx, err := c.Tx(ctx)
	if errors.Is(err, ent.ErrTxStarted) {
		return fn(c)
	}
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx.Client())
}

// withTx runs fn in a new transaction, or in the caller's when c already is one.
func withTx(ctx context.Context, c *ent.Client, fn func(*ent.Client) error) error {
	tx, err := c.Tx(ctx)
	if errors.Is(err, ent.ErrTxStarted) {
		return fn(c)
	}
	if err != nil {
		return err
	}
	if err := fn(tx.Client()); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writePlan replaces the waves and members of p with pl's and stores the
// report. manual marks hosts placed by hand. c must be a transaction.
//
// Rows are created as the system with the tenant set explicitly: every host
// id comes from LoadEstate, which read it through the tenant's viewer, so the
// per-row reference check of the tenant hook (a query per edge per row,
// 40,000 for a 20,000-host plan) would prove nothing new.
func writePlan(ctx context.Context, c *ent.Client, p *ent.Plan, pl *planner.Plan, manual map[string]bool, now func() time.Time) error {
	tenantID := p.TenantID
	sys := viewer.SystemContext(ctx)
	if _, err := c.WaveMember.Delete().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(p.ID)))).Exec(ctx); err != nil {
		return fmt.Errorf("clear members: %w", err)
	}
	if _, err := c.Wave.Delete().Where(wave.HasPlanWith(plan.ID(p.ID))).Exec(ctx); err != nil {
		return fmt.Errorf("clear waves: %w", err)
	}
	wb := make([]*ent.WaveCreate, len(pl.Waves))
	for i, w := range pl.Waves {
		name := fmt.Sprintf("Wave %d", w.Number)
		if w.Pilot {
			name += " (pilot)"
		}
		wc := c.Wave.Create().SetTenantID(tenantID).SetPlanID(p.ID).SetOrdinal(w.Number).SetName(name).
			SetPilot(w.Pilot).SetHostCount(w.Hosts).SetDataBytes(w.Bytes).SetWireBytes(w.WireBytes).
			SetReplicationSeconds(int64(w.ReplicationHours * 3600)).
			SetConfidence(w.Confidence).SetConfidenceFactors(nonNil(w.ConfidenceFactors)).SetRisk(w.Risk).SetRiskFactors(nonNil(w.RiskFactors))
		if !w.Start.IsZero() {
			wc.SetStartsAt(w.Start).SetEndsAt(w.End)
		}
		if !w.CutoverStart.IsZero() {
			wc.SetCutoverAt(w.CutoverStart).SetCutoverEndsAt(w.CutoverEnd)
		}
		wb[i] = wc
	}
	waves, err := c.Wave.CreateBulk(wb...).Save(sys)
	if err != nil {
		return fmt.Errorf("write waves: %w", err)
	}
	var mb []*ent.WaveMemberCreate
	flush := func() error {
		if len(mb) == 0 {
			return nil
		}
		err := c.WaveMember.CreateBulk(mb...).Exec(sys)
		mb = mb[:0]
		return err
	}
	for i, w := range pl.Waves {
		for _, m := range w.Members {
			hid, err := strconv.Atoi(m.HostID)
			if err != nil {
				return fmt.Errorf("member %q: not a host id", m.HostID)
			}
			mb = append(mb, c.WaveMember.Create().SetTenantID(tenantID).SetWaveID(waves[i].ID).SetHostID(hid).
				SetReason(truncate(m.Reason, 2000)).SetReasons(nonNilFindings(m.Reasons)).SetMoveGroup(m.Group).SetManual(manual[m.HostID]).
				SetBytes(m.Bytes).SetDowntimeMinutes(m.DowntimeMinutes))
			if len(mb) == batch {
				if err := flush(); err != nil {
					return fmt.Errorf("write members: %w", err)
				}
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("write members: %w", err)
	}
	status := plan.StatusReady
	if len(pl.Infeasible) > 0 || len(pl.Unplaced) > 0 {
		status = plan.StatusInfeasible
	}
	metrics, err := toMap(pl.Metrics)
	if err != nil {
		return err
	}
	inf, err := toMaps(pl.Infeasible)
	if err != nil {
		return err
	}
	unp, err := toMaps(pl.Unplaced)
	if err != nil {
		return err
	}
	cyc, err := toMaps(pl.Cycles)
	if err != nil {
		return err
	}
	shared, err := toMaps(pl.SharedServices)
	if err != nil {
		return err
	}
	return c.Plan.UpdateOneID(p.ID).SetStatus(status).SetMetrics(metrics).SetInfeasible(inf).SetUnplaced(unp).
		SetCycles(cyc).SetSharedServices(shared).SetWarnings(append(nonNil(pl.Warnings), waivedWarnings(pl.Waived)...)).SetError("").ClearProblems().SetFinishedAt(now()).Exec(ctx)
}

// waivedWarnings stores the wave rules that gave way among the warnings,
// marked, so the plan screen lists them with the rest.
func waivedWarnings(w []string) []string {
	out := make([]string, 0, len(w))
	for _, x := range w {
		out = append(out, "waived "+x)
	}
	return out
}

func nonNilFindings(s []i18n.Finding) []i18n.Finding {
	if s == nil {
		return []i18n.Finding{}
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n-3])
	return string(r[:len(r)-1]) + "…"
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func toMaps(v any) ([]map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := []map[string]any{}
	if string(b) == "null" {
		return m, nil
	}
	return m, json.Unmarshal(b, &m)
}

// loadPlan rebuilds the planner's view of a stored plan: waves in order
// with their members (host ids only: CheckMove and ApplyMove need no more),
// the infeasibilities and warnings.
func loadPlan(ctx context.Context, c *ent.Client, p *ent.Plan) (*planner.Plan, map[string]bool, error) {
	ws, err := c.Wave.Query().Where(wave.HasPlanWith(plan.ID(p.ID))).Order(ent.Asc(wave.FieldOrdinal)).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load waves: %w", err)
	}
	out := &planner.Plan{Warnings: p.Warnings}
	pos := map[int]int{}
	for i, w := range ws {
		pos[w.ID] = i
		pw := planner.Wave{Number: w.Ordinal, Pilot: w.Pilot, Hosts: w.HostCount, Bytes: w.DataBytes, WireBytes: w.WireBytes,
			ReplicationHours: float64(w.ReplicationSeconds) / 3600,
			Confidence:       w.Confidence, ConfidenceFactors: w.ConfidenceFactors, Risk: w.Risk, RiskFactors: w.RiskFactors}
		if w.StartsAt != nil && w.EndsAt != nil {
			pw.Start, pw.End = *w.StartsAt, *w.EndsAt
			pw.DurationHours = pw.End.Sub(pw.Start).Hours()
		}
		if w.CutoverAt != nil && w.CutoverEndsAt != nil {
			pw.CutoverStart, pw.CutoverEnd = *w.CutoverAt, *w.CutoverEndsAt
		}
		out.Waves = append(out.Waves, pw)
	}
	var rows []struct {
		ID     int    `json:"id"`
		Host   int    `json:"host_wave_memberships"`
		Wave   int    `json:"wave_members"`
		Reason string `json:"reason"`
		// reasons is a JSON column: scanned as text, decoded below.
		Reasons sql.NullString `json:"reasons"`
		Group   string         `json:"move_group"`
		Manual  bool           `json:"manual"`
		Bytes   int64          `json:"bytes"`
		Down    float64        `json:"downtime_minutes"`
	}
	err = c.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(p.ID)))).Order(ent.Asc(wavemember.FieldID)).
		Modify(func(s *sql.Selector) {
			s.Select(s.C(wavemember.FieldID), s.C(wavemember.HostColumn), s.C(wavemember.WaveColumn), s.C(wavemember.FieldReason), s.C(wavemember.FieldReasons),
				s.C(wavemember.FieldMoveGroup), s.C(wavemember.FieldManual), s.C(wavemember.FieldBytes), s.C(wavemember.FieldDowntimeMinutes))
		}).Scan(ctx, &rows)
	if err != nil {
		return nil, nil, fmt.Errorf("load members: %w", err)
	}
	manual := map[string]bool{}
	for _, r := range rows {
		i, ok := pos[r.Wave]
		if !ok {
			continue
		}
		id := HostID(r.Host)
		var reasons []i18n.Finding
		if r.Reasons.Valid && r.Reasons.String != "" {
			if err := json.Unmarshal([]byte(r.Reasons.String), &reasons); err != nil {
				return nil, nil, fmt.Errorf("member %d: unreadable reasons: %w", r.ID, err)
			}
		}
		out.Waves[i].Members = append(out.Waves[i].Members, planner.Member{HostID: id, Group: r.Group, Bytes: r.Bytes, DowntimeMinutes: r.Down, Reason: r.Reason, Reasons: reasons})
		if r.Manual {
			manual[id] = true
		}
	}
	if b, err := json.Marshal(p.Metrics); err != nil || json.Unmarshal(b, &out.Metrics) != nil {
		return nil, nil, fmt.Errorf("plan %d: unreadable metrics", p.ID)
	}
	if err := fromMaps(p.Infeasible, &out.Infeasible); err != nil {
		return nil, nil, err
	}
	if err := fromMaps(p.Unplaced, &out.Unplaced); err != nil {
		return nil, nil, err
	}
	if err := fromMaps(p.Cycles, &out.Cycles); err != nil {
		return nil, nil, err
	}
	if err := fromMaps(p.SharedServices, &out.SharedServices); err != nil {
		return nil, nil, err
	}
	return out, manual, nil
}

func fromMaps(in []map[string]any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// MoveResult is what a manual move did or would do.
type MoveResult struct {
	Violations []planner.Violation
	Saved      bool
}

// Move checks moving host hostID (with its whole move group when
// wholeGroup) to wave toWave of plan planID. It saves the move when it
// breaks nothing (planner.ApplyMove: reasons, schedule and metrics are
// recomputed), or when confirm is set (the hosts are moved as asked, marked
// manual, and the plan's warnings record what the move breaks). Otherwise
// nothing is written and the violations come back. c should be a
// transaction; ctx carries the tenant's viewer.
func Move(ctx context.Context, c *ent.Client, planID, hostID, toWave int, wholeGroup, confirm bool, now func() time.Time) (*MoveResult, error) {
	p, err := c.Plan.Get(ctx, planID)
	if err != nil {
		return nil, err
	}
	if p.Status != plan.StatusReady && p.Status != plan.StatusInfeasible {
		return nil, ferry.Errorf(ferry.ECONFLICT, "plan %q is %s; hosts can be moved once it is ready", p.Name, p.Status)
	}
	if ok, err := c.Host.Query().Where(host.ID(hostID)).Exist(ctx); err != nil {
		return nil, err
	} else if !ok {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "host %d not found", hostID)
	}
	cfg, err := DecodeStoredConfig(p.Constraints)
	if err != nil {
		if fe := InputError(err); fe != nil {
			return nil, fe
		}
		return nil, err
	}
	est, err := LoadEstate(ctx, c, true)
	if err != nil {
		return nil, err
	}
	cur, manual, err := loadPlan(ctx, c, p)
	if err != nil {
		return nil, err
	}
	mv := planner.Move{HostID: HostID(hostID), ToWave: toWave, WholeGroup: wholeGroup}
	vs, err := planner.CheckMove(est, cfg.Rules, cfg.Constraints, cur, mv)
	if err != nil {
		if fe := InputError(nameProblems(err, est)); fe != nil {
			return nil, fe
		}
		return nil, err
	}
	res := &MoveResult{Violations: vs}
	if len(vs) > 0 && (!confirm || hasKind(vs, "wave")) {
		return res, nil
	}
	var next *planner.Plan
	moved := []string{mv.HostID}
	if len(vs) == 0 {
		np, vs2, err := planner.ApplyMove(est, cfg.Rules, cfg.Constraints, cur, mv)
		if err != nil {
			return nil, err
		}
		if len(vs2) > 0 {
			res.Violations = vs2
			return res, nil
		}
		next = np
		// ApplyMove moves the whole group; every host that changed wave is manual now.
		before := waveOf(cur)
		for h, w := range waveOf(np) {
			if before[h] != w {
				moved = append(moved, h)
			}
		}
	} else {
		next, moved = forceMove(est, cur, mv, vs)
	}
	for _, h := range moved {
		manual[h] = true
	}
	if err := withTx(ctx, c, func(tx *ent.Client) error { return writePlan(ctx, tx, p, next, manual, now) }); err != nil {
		return nil, err
	}
	res.Saved = true
	return res, nil
}

func hasKind(vs []planner.Violation, kind string) bool {
	for _, v := range vs {
		if v.Kind == kind {
			return true
		}
	}
	return false
}

func waveOf(p *planner.Plan) map[string]int {
	m := map[string]int{}
	for _, w := range p.Waves {
		for _, mb := range w.Members {
			m[mb.HostID] = w.Number
		}
	}
	return m
}

// forceMove moves the host (or its group) as the user confirmed despite the
// violations: members change wave, wave sizes follow, and the violations
// are kept as warnings and in the members' reasons. The schedule is not
// recomputed (the planner only schedules plans that keep every rule).
func forceMove(est *planner.Estate, cur *planner.Plan, mv planner.Move, vs []planner.Violation) (*planner.Plan, []string) {
	group := ""
	for _, w := range cur.Waves {
		for _, m := range w.Members {
			if m.HostID == mv.HostID {
				group = m.Group
			}
		}
	}
	if mv.ToWave == len(cur.Waves)+1 {
		cur.Waves = append(cur.Waves, planner.Wave{Number: mv.ToWave})
	}
	var msgs []string
	for _, v := range vs {
		msgs = append(msgs, v.Kind+": "+v.Message)
	}
	manualWhy := []i18n.Finding{{Kind: "wave", Code: "plan.member.manual", Params: map[string]any{"wave": mv.ToWave, "violations": strings.Join(msgs, "; ")}}}
	note := planner.ReasonText("en", manualWhy)
	bytesOf := map[string]int64{}
	for i := range est.Hosts {
		bytesOf[est.Hosts[i].ID] = est.Hosts[i].UsedBytes()
	}
	var moving []planner.Member
	var moved []string
	for i := range cur.Waves {
		w := &cur.Waves[i]
		keep := w.Members[:0]
		for _, m := range w.Members {
			if m.HostID == mv.HostID || (mv.WholeGroup && group != "" && m.Group == group) {
				m.Reason, m.Reasons = note, manualWhy
				moving = append(moving, m)
				moved = append(moved, m.HostID)
				continue
			}
			keep = append(keep, m)
		}
		w.Members = keep
	}
	// A host that was unplaced joins the wave too.
	if len(moving) == 0 {
		moving = append(moving, planner.Member{HostID: mv.HostID, Reason: note, Reasons: manualWhy, Bytes: bytesOf[mv.HostID]})
		moved = append(moved, mv.HostID)
		var unp []planner.Unplaced
		for _, u := range cur.Unplaced {
			if u.HostID != mv.HostID {
				unp = append(unp, u)
			}
		}
		cur.Unplaced = unp
	}
	t := &cur.Waves[mv.ToWave-1]
	t.Members = append(t.Members, moving...)
	for i := range cur.Waves {
		w := &cur.Waves[i]
		w.Hosts, w.Bytes = len(w.Members), 0
		for _, m := range w.Members {
			w.Bytes += bytesOf[m.HostID]
		}
	}
	cur.Warnings = append(cur.Warnings, fmt.Sprintf("host %s: %s", mv.HostID, note))
	cur.Metrics.Placed, cur.Metrics.Waves = 0, len(cur.Waves)
	for _, w := range cur.Waves {
		cur.Metrics.Placed += len(w.Members)
	}
	cur.Metrics.Hosts = len(est.Hosts)
	return cur, moved
}
