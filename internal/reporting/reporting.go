// Package reporting is the ent-backed report.Source: it reads a tenant's
// hosts, assessments, connections and plan in id-ordered pages (a constant
// number of queries per page, never the whole estate at once) for the report
// writers, and computes the business case in one pass over the hosts.
package reporting

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/ent/connection"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/internal/planning"
	"github.com/ferry-migrate/ferry/report"
)

// page is how many hosts (or connections) one round of queries reads.
const page = 1000

// Source reads one tenant (the viewer in the contexts it is given).
type Source struct {
	Client *ent.Client
	Target string
	// PlanID is the plan to report; 0 takes the newest ready or infeasible plan.
	PlanID      int
	Assumptions *report.Assumptions // nil: no business case
	Now         func() time.Time

	plan *ent.Plan
	meta *report.Meta
}

// New checks the plan and prepares a source.
func New(ctx context.Context, c *ent.Client, target string, planID int, a *report.Assumptions, now func() time.Time) (*Source, error) {
	if target == "" {
		target = "alibaba"
	}
	if now == nil {
		now = time.Now
	}
	s := &Source{Client: c, Target: target, PlanID: planID, Assumptions: a, Now: now}
	var err error
	if planID != 0 {
		s.plan, err = c.Plan.Get(ctx, planID)
		if err != nil {
			return nil, err
		}
	} else {
		s.plan, err = c.Plan.Query().Where(plan.StatusIn(plan.StatusReady, plan.StatusInfeasible)).Order(ent.Desc(plan.FieldCreatedAt), ent.Desc(plan.FieldID)).First(ctx)
		if ent.IsNotFound(err) {
			s.plan, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Plan is the plan reported on (nil when there is none).
func (s *Source) Plan() *ent.Plan { return s.plan }

// Meta implements report.Source.
func (s *Source) Meta(ctx context.Context) (*report.Meta, error) {
	if s.meta != nil {
		return s.meta, nil
	}
	c := s.Client
	m := &report.Meta{Generated: s.Now()}
	if ts, err := c.Tenant.Query().Limit(2).All(ctx); err == nil && len(ts) == 1 {
		m.Tenant = ts[0].Name
	}
	sum, err := planning.Summarize(ctx, c, s.Target)
	if err != nil {
		return nil, err
	}
	m.Summary = report.Summary{Target: s.Target, Region: sum.Region, Hosts: sum.Hosts, Ready: sum.Ready, ReadyWithActions: sum.ReadyWithActions,
		NotReady: sum.NotReady, Unknown: sum.Unknown, MonthlyAsIs: sum.MonthlyAsIs, MonthlyRightSized: sum.MonthlyRightSized,
		StorageMonthly: sum.StorageMonthly, SavingsPercent: sum.SavingsPercent, UsedBytes: sum.UsedBytes, TransferSeconds: sum.TransferSeconds,
		OfflineSeedingHosts: sum.OfflineSeedingHosts, Priced: sum.Priced, Currency: sum.Currency, PriceSource: sum.PriceSource,
		PriceDate: sum.PriceDate, AssessedAt: sum.AssessedAt}
	if m.Summary.Currency == "" {
		m.Summary.Currency = "USD"
	}
	if m.InventoryHosts, err = c.Host.Query().Count(ctx); err != nil {
		return nil, err
	}
	if m.Connections, err = c.Connection.Query().Count(ctx); err != nil {
		return nil, err
	}
	if p := s.plan; p != nil {
		info := &report.PlanInfo{ID: p.ID, Name: p.Name, Status: string(p.Status), Target: p.Target}
		num := func(k string) float64 {
			if v, ok := p.Metrics[k].(float64); ok {
				return v
			}
			return 0
		}
		// The planner stores the share as a fraction (0..1); the report prints percent.
		info.Waves, info.Hosts, info.Placed, info.CrossingShare = int(num("waves")), int(num("hosts")), int(num("placed")), math.Round(num("crossing_share")*1000)/10
		ws, err := s.Waves(ctx)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			if w.Start != nil && (info.Start == nil || w.Start.Before(*info.Start)) {
				info.Start = w.Start
			}
			if w.End != nil && (info.End == nil || w.End.After(*info.End)) {
				info.End = w.End
			}
		}
		m.Plan = info
	}
	if s.Assumptions != nil {
		cs, err := s.Case(ctx, *s.Assumptions)
		if err != nil {
			return nil, err
		}
		m.Case = cs
	}
	s.meta = m
	return m, nil
}

// Case computes the business case in one pass over the hosts.
func (s *Source) Case(ctx context.Context, a report.Assumptions) (*report.Case, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	start := s.Now().UTC().Truncate(24 * time.Hour)
	if s.plan != nil {
		ws, err := s.Waves(ctx)
		if err != nil {
			return nil, err
		}
		for i, w := range ws {
			if w.Start != nil && (i == 0 || w.Start.Before(start)) {
				start = *w.Start
			}
		}
	}
	b := report.NewCase(a, start, s.Target == "alibaba")
	err := s.Hosts(ctx, func(h *report.HostRow) error {
		ch := report.CaseHost{CPUs: h.CPUs, DiskGiB: float64(h.DiskProvisioned) / (1 << 30), Windows: strings.Contains(strings.ToLower(h.OS), "windows"),
			CPUP95: h.CPUP95, Connected: h.Connected, Assessed: h.Assessed, NeedVCPUs: h.NeedVCPUs, MonthlyAsIs: h.MonthlyAsIs,
			MonthlyRight: h.MonthlyRightSized, StorageMonthly: h.StorageMonthly, WaveStart: h.WaveStart, Cutover: h.CutoverEnd}
		b.Add(ch)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b.Finish(), nil
}

type memberRow struct {
	Host     int            `json:"host_wave_memberships"`
	Wave     int            `json:"wave_members"`
	Group    string         `json:"move_group"`
	Reason   string         `json:"reason"`
	Reasons  sql.NullString `json:"reasons"` // JSON, decoded where the row is used
	Manual   bool           `json:"manual"`
	Downtime float64        `json:"downtime_minutes"`
	Bytes    int64          `json:"bytes"`
}

// members reads the plan's wave members of the given hosts.
func (s *Source) members(ctx context.Context, ids []int) ([]memberRow, error) {
	if s.plan == nil || len(ids) == 0 {
		return nil, nil
	}
	var rows []memberRow
	err := s.Client.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(s.plan.ID))), func(sel *sql.Selector) {
		sel.Where(sql.InInts(sel.C(wavemember.HostColumn), ids...))
	}).Modify(func(sel *sql.Selector) {
		sel.Select(sel.C(wavemember.HostColumn), sel.C(wavemember.WaveColumn), sel.C(wavemember.FieldMoveGroup), sel.C(wavemember.FieldReason), sel.C(wavemember.FieldReasons),
			sel.C(wavemember.FieldManual), sel.C(wavemember.FieldDowntimeMinutes), sel.C(wavemember.FieldBytes))
	}).Scan(ctx, &rows)
	return rows, err
}

// waveIndex maps wave ids to rows of the plan.
func (s *Source) waveIndex(ctx context.Context) (map[int]*ent.Wave, error) {
	out := map[int]*ent.Wave{}
	if s.plan == nil {
		return out, nil
	}
	ws, err := s.Client.Wave.Query().Where(wave.HasPlanWith(plan.ID(s.plan.ID))).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		out[w.ID] = w
	}
	return out, nil
}

// Hosts implements report.Source: hosts in id order, a page at a time, each
// page with its assessments, applications, memberships and whether any
// connection touches the host.
func (s *Source) Hosts(ctx context.Context, fn func(*report.HostRow) error) error {
	c := s.Client
	waves, err := s.waveIndex(ctx)
	if err != nil {
		return err
	}
	for last := 0; ; {
		hs, err := c.Host.Query().Where(host.IDGT(last)).Order(ent.Asc(host.FieldID)).Limit(page).
			WithApplication().WithAssessments(func(q *ent.AssessmentQuery) { q.Where(assessment.Target(s.Target)) }).All(ctx)
		if err != nil {
			return fmt.Errorf("report hosts: %w", err)
		}
		if len(hs) == 0 {
			return nil
		}
		ids := make([]int, len(hs))
		for i, h := range hs {
			ids[i] = h.ID
		}
		ms, err := s.members(ctx, ids)
		if err != nil {
			return fmt.Errorf("report members: %w", err)
		}
		mem := make(map[int]memberRow, len(ms))
		for _, m := range ms {
			mem[m.Host] = m
		}
		connected := map[int]bool{}
		for _, col := range []string{connection.FieldSrcHostID, connection.FieldDstHostID} {
			var got []int
			err := c.Connection.Query().Where(func(sel *sql.Selector) { sel.Where(sql.InInts(sel.C(col), ids...)) }).
				Modify(func(sel *sql.Selector) { sel.Select(sql.Distinct(sel.C(col))) }).Scan(ctx, &got)
			if err != nil {
				return fmt.Errorf("report connections of hosts: %w", err)
			}
			for _, id := range got {
				connected[id] = true
			}
		}
		for _, h := range hs {
			r := &report.HostRow{ID: h.ID, Name: h.Name, FQDN: h.Fqdn, OS: h.Os, Environment: string(h.Environment), Criticality: string(h.Criticality),
				Owner: h.Owner, CPUs: h.Cpus, MemoryMiB: h.MemoryMib, DiskProvisioned: h.DiskProvisionedBytes, DiskUsed: h.DiskUsedBytes,
				IPs: h.Ips, CPUP95: h.CPUP95, MemoryP95: h.MemoryP95, Connected: connected[h.ID]}
			if h.Edges.Application != nil {
				r.App = h.Edges.Application.Name
			}
			if as := h.Edges.Assessments; len(as) > 0 {
				a := as[0]
				r.Assessed, r.Readiness, r.Findings, r.NeedVCPUs, r.NeedMemoryGiB = true, string(a.Readiness), a.Findings, a.NeedVcpus, a.NeedMemoryGib
				r.InstanceAsIs, r.InstanceRightSized, r.MonthlyAsIs, r.MonthlyRightSized = a.InstanceTypeAsIs, a.InstanceType, a.MonthlyCostAsIs, a.MonthlyCostRightSized
				r.StorageMonthly, r.TransferSeconds, r.OfflineSeeding = a.StorageMonthly, a.TransferSeconds, a.OfflineSeeding
			}
			if m, ok := mem[h.ID]; ok {
				r.Group, r.Reason, r.Manual, r.DowntimeMinutes = m.Group, m.Reason, m.Manual, m.Downtime
				if m.Reasons.Valid && m.Reasons.String != "" {
					if err := json.Unmarshal([]byte(m.Reasons.String), &r.Reasons); err != nil {
						return fmt.Errorf("host %d: unreadable plan reasons: %w", h.ID, err)
					}
				}
				if w := waves[m.Wave]; w != nil {
					r.Wave, r.WaveStart, r.CutoverStart, r.CutoverEnd = w.Ordinal, w.StartsAt, w.CutoverAt, w.CutoverEndsAt
				}
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(hs) < page {
			return nil
		}
		last = hs[len(hs)-1].ID
	}
}

// Connections implements report.Source: connections in id order with the
// names and waves of their hosts, looked up per page.
func (s *Source) Connections(ctx context.Context, fn func(*report.ConnRow) error) error {
	c := s.Client
	waves, err := s.waveIndex(ctx)
	if err != nil {
		return err
	}
	for last := 0; ; {
		cs, err := c.Connection.Query().Where(connection.IDGT(last)).Order(ent.Asc(connection.FieldID)).Limit(5 * page).All(ctx)
		if err != nil {
			return fmt.Errorf("report connections: %w", err)
		}
		if len(cs) == 0 {
			return nil
		}
		seen := map[int]bool{}
		var ids []int
		for _, x := range cs {
			for _, id := range []int{x.SrcHostID, deref(x.DstHostID)} {
				if id != 0 && !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		names := map[int]string{}
		for chunk := 0; chunk < len(ids); chunk += 900 {
			part := ids[chunk:min(chunk+900, len(ids))]
			hs, err := c.Host.Query().Where(host.IDIn(part...)).Select(host.FieldID, host.FieldName).All(ctx)
			if err != nil {
				return err
			}
			for _, h := range hs {
				names[h.ID] = h.Name
			}
		}
		waveOf := map[int]int{}
		for chunk := 0; chunk < len(ids); chunk += 900 {
			ms, err := s.members(ctx, ids[chunk:min(chunk+900, len(ids))])
			if err != nil {
				return err
			}
			for _, m := range ms {
				if w := waves[m.Wave]; w != nil {
					waveOf[m.Host] = w.Ordinal
				}
			}
		}
		for _, x := range cs {
			r := &report.ConnRow{Src: names[x.SrcHostID], Port: x.Port, Protocol: string(x.Protocol), Proc: x.Process, Count: x.Count, Bytes: x.Bytes,
				SrcWave: waveOf[x.SrcHostID]}
			if x.DstHostID != nil {
				r.Dst, r.DstWav = names[*x.DstHostID], waveOf[*x.DstHostID]
			} else {
				r.Dst = x.DstAddress
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(cs) < 5*page {
			return nil
		}
		last = cs[len(cs)-1].ID
	}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// Groups implements report.Source: wave members ordered by move group,
// folded into one row per group as they stream.
func (s *Source) Groups(ctx context.Context, fn func(*report.GroupRow) error) error {
	if s.plan == nil {
		return nil
	}
	waves, err := s.waveIndex(ctx)
	if err != nil {
		return err
	}
	var cur *report.GroupRow
	emit := func() error {
		if cur == nil {
			return nil
		}
		return fn(cur)
	}
	for off := 0; ; off += page {
		ms, err := s.Client.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(s.plan.ID)))).
			Order(ent.Asc(wavemember.FieldMoveGroup), ent.Asc(wavemember.FieldID)).Offset(off).Limit(page).
			WithHost(func(q *ent.HostQuery) { q.Select(host.FieldName) }).WithWave(func(q *ent.WaveQuery) { q.Select(wave.FieldOrdinal) }).All(ctx)
		if err != nil {
			return fmt.Errorf("report groups: %w", err)
		}
		for _, m := range ms {
			name := m.MoveGroup
			if cur == nil || cur.Name != name {
				if err := emit(); err != nil {
					return err
				}
				cur = &report.GroupRow{Name: name}
				if w := m.Edges.Wave; w != nil {
					cur.Wave = waves[w.ID].Ordinal
				}
			}
			cur.Hosts++
			cur.Bytes += m.Bytes
			if len(cur.Members) < 20 && m.Edges.Host != nil {
				cur.Members = append(cur.Members, m.Edges.Host.Name)
			}
		}
		if len(ms) < page {
			return emit()
		}
	}
}

// Waves implements report.Source.
func (s *Source) Waves(ctx context.Context) ([]report.WaveRow, error) {
	if s.plan == nil {
		return nil, nil
	}
	ws, err := s.Client.Wave.Query().Where(wave.HasPlanWith(plan.ID(s.plan.ID))).Order(ent.Asc(wave.FieldOrdinal)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]report.WaveRow, 0, len(ws))
	for _, w := range ws {
		r := report.WaveRow{Ordinal: w.Ordinal, Pilot: w.Pilot, Hosts: w.HostCount, DataBytes: w.DataBytes, WireBytes: w.WireBytes,
			ReplicationSeconds: w.ReplicationSeconds, Start: w.StartsAt, End: w.EndsAt, CutoverStart: w.CutoverAt, CutoverEnd: w.CutoverEndsAt, Status: string(w.Status)}
		var sums []struct {
			Sum    float64 `json:"sum"`
			Groups int     `json:"groups"`
		}
		err := s.Client.Assessment.Query().Where(assessment.Target(s.Target),
			assessment.HasHostWith(host.HasWaveMembershipsWith(wavemember.HasWaveWith(wave.ID(w.ID))))).
			Aggregate(ent.As(ent.Sum(assessment.FieldMonthlyCostRightSized), "sum")).Scan(ctx, &sums)
		if err != nil {
			return nil, fmt.Errorf("wave %d cost: %w", w.Ordinal, err)
		}
		if len(sums) > 0 {
			r.MonthlyRightSized = sums[0].Sum
		}
		var groups []struct {
			Group string `json:"move_group"`
		}
		err = s.Client.WaveMember.Query().Where(wavemember.HasWaveWith(wave.ID(w.ID))).GroupBy(wavemember.FieldMoveGroup).Scan(ctx, &groups)
		if err != nil {
			return nil, err
		}
		r.Groups = len(groups)
		out = append(out, r)
	}
	return out, nil
}
