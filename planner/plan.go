package planner

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Plan is the planner's answer: ordered waves with a reason per member, the
// move groups and cycles behind them, what could not be placed and why, and
// the metrics. Its JSON is byte-identical for identical inputs.
type Plan struct {
	Waves      []Wave          `json:"waves"`
	Groups     []Group         `json:"groups"`
	Cycles     []Cycle         `json:"cycles"`
	Infeasible []Infeasibility `json:"infeasible"`
	Unplaced   []Unplaced      `json:"unplaced"`
	Warnings   []string        `json:"warnings"`
	Metrics    Metrics         `json:"metrics"`
}

// Wave is one batch of hosts that replicate and cut over together.
type Wave struct {
	Number int  `json:"number"`
	Pilot  bool `json:"pilot"`
	Hosts  int  `json:"hosts"`
	// Bytes is the used data of the members; WireBytes after compression.
	Bytes     int64 `json:"bytes"`
	WireBytes int64 `json:"wire_bytes"`
	// ReplicationStart/End bound the initial copy (inside transfer windows).
	ReplicationStart time.Time `json:"replication_start"`
	ReplicationEnd   time.Time `json:"replication_end"`
	ReplicationHours float64   `json:"replication_hours"`
	// CutoverStart/End is the slot in a cutover window.
	CutoverStart time.Time `json:"cutover_start"`
	CutoverEnd   time.Time `json:"cutover_end"`
	// Start/End bound the whole wave; DurationHours is End - Start.
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	DurationHours float64   `json:"duration_hours"`
	Members       []Member  `json:"members"`
}

// Member is a host in a wave and why it is there.
type Member struct {
	HostID string `json:"host_id"`
	Name   string `json:"name"`
	Group  string `json:"group"`
	Bytes  int64  `json:"bytes"`
	// DowntimeMinutes is the estimated cutover outage of this host.
	DowntimeMinutes float64 `json:"downtime_minutes"`
	Reason          string  `json:"reason"`
}

// Group is a move group: hosts that must share a wave.
type Group struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Hosts   []string `json:"hosts"`
	Sources []string `json:"sources"`
	Bytes   int64    `json:"bytes"`
	Wave    int      `json:"wave"` // 0 = not placed
}

// Cycle is a dependency loop found in the estate; its hosts move together.
type Cycle struct {
	Chain         string   `json:"chain"`
	Hosts         []string `json:"hosts"`
	Size          int      `json:"size"`
	BetweenGroups bool     `json:"between_groups"`
}

// Infeasibility is a group that no wave can take without breaking a rule.
// Chain names the facts that conflict, in order.
type Infeasibility struct {
	Kind    string   `json:"kind"` // too-big, pin-conflict, pin-order, order-cycle, rule-conflict, keep-apart, capacity
	Group   string   `json:"group"`
	Message string   `json:"message"`
	Chain   []string `json:"chain"`
	Hosts   []string `json:"hosts"`
}

// Unplaced is a host left out of every wave, with the reason.
type Unplaced struct {
	HostID string `json:"host_id"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Metrics summarise a plan.
type Metrics struct {
	Waves  int `json:"waves"`
	Hosts  int `json:"hosts"`
	Placed int `json:"placed"`
	Groups int `json:"groups"`
	// TotalWeight is the dependency weight (connection count, noise
	// removed) between different groups; CrossingWeight the part of it
	// whose ends are in different waves.
	TotalWeight    int64   `json:"total_weight"`
	CrossingWeight int64   `json:"crossing_weight"`
	CrossingShare  float64 `json:"crossing_share"`
	// CriticalPath is the longest chain of order constraints (group names);
	// no plan can use fewer waves than its strict steps plus one.
	CriticalPath  []string  `json:"critical_path"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	DurationHours float64   `json:"duration_hours"`
	WaveHours     []float64 `json:"wave_hours"`
}

// Build makes a plan. It returns an error only for bad input (a Problems
// value naming every item); rules that cannot all hold are reported in
// Plan.Infeasible and the affected hosts in Plan.Unplaced.
func Build(e *Estate, r Rules, c Constraints) (*Plan, error) {
	if strings.TrimSpace(c.Start) == "" {
		return nil, Problems{"start: is required (the first day replication may begin, YYYY-MM-DD)"}
	}
	m, err := newModel(e, r, c)
	if err != nil {
		return nil, err
	}
	m.prepare()
	earliest, deadline := m.bounds()
	var warnings []string
	if m.c.Pilot.Hosts > 0 {
		any := false
		for g := range m.groups {
			if !m.bad[g] && earliest[g] == 1 && m.groups[g].eligible {
				any = true
				break
			}
		}
		if !any {
			warnings = append(warnings, "no pilot wave: no low-risk group (non-production, low criticality, few dependants) is free of dependencies on other hosts")
			m.c.Pilot.Hosts = 0
			earliest, deadline = m.bounds()
		}
	}
	wave, w2 := m.pack(earliest, deadline)
	warnings = append(warnings, w2...)
	m.improve(wave)
	return m.render(wave, warnings)
}

// render turns group waves into the Plan with reasons, schedule and metrics.
func (m *model) render(wave []int, warnings []string) (*Plan, error) {
	p := &Plan{Cycles: m.cycles, Infeasible: m.infeasible, Warnings: warnings}
	if p.Cycles == nil {
		p.Cycles = []Cycle{}
	}
	if p.Infeasible == nil {
		p.Infeasible = []Infeasibility{}
	}
	if p.Warnings == nil {
		p.Warnings = []string{}
	}
	nw := 0
	for _, w := range wave {
		nw = max(nw, w)
	}
	p.Waves = make([]Wave, nw)
	for i := range p.Waves {
		p.Waves[i].Number = i + 1
		p.Waves[i].Pilot = i == 0 && m.c.Pilot.Hosts > 0
		p.Waves[i].Members = []Member{}
	}
	p.Groups = make([]Group, len(m.groups))
	for gi, g := range m.groups {
		gr := Group{ID: fmt.Sprintf("g-%05d", gi+1), Name: g.name, Hosts: hostIDs(m, g.hosts), Sources: g.sources, Bytes: g.bytes, Wave: wave[gi]}
		if gr.Sources == nil {
			gr.Sources = []string{}
		}
		p.Groups[gi] = gr
	}
	p.Unplaced = []Unplaced{}
	sched, _ := m.c.transferSchedule()
	for v := 0; v < m.n; v++ {
		g := m.hostGroup[v]
		h := &m.e.Hosts[v]
		if wave[g] == 0 {
			why := m.badWhy[g]
			if why == "" {
				why = "not placed"
			}
			p.Unplaced = append(p.Unplaced, Unplaced{HostID: h.ID, Name: h.Label(), Reason: why})
			continue
		}
		wv := &p.Waves[wave[g]-1]
		b := h.UsedBytes()
		wv.Hosts++
		wv.Bytes += b
		wv.Members = append(wv.Members, Member{
			HostID: h.ID, Name: h.Label(), Group: p.Groups[g].ID, Bytes: b,
			DowntimeMinutes: round2(m.downtime(b).Minutes()),
			Reason:          m.reason(int32(v), wave),
		})
	}
	m.schedule(p, sched, &p.Warnings)
	m.metrics(p, wave)
	return p, nil
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// downtime estimates one host's cutover outage: the fixed overhead plus the
// final delta over the whole link.
func (m *model) downtime(used int64) time.Duration {
	bits := float64(used) * m.c.FinalDeltaRatio * m.c.CompressionRatio * 8
	return time.Duration(m.c.CutoverOverhead) + time.Duration(bits/float64(m.c.Bandwidth)*float64(time.Second))
}

// reason explains a member's wave: what it moves with, then why this wave.
func (m *model) reason(v int32, wave []int) string {
	g := m.hostGroup[v]
	gr := m.groups[g]
	w := wave[g]
	var parts []string
	if len(gr.hosts) > 1 {
		parts = append(parts, "moves with "+strings.Join(gr.sources, "; "))
	}
	switch {
	case gr.pin > 0:
		parts = append(parts, fmt.Sprintf("pinned to wave %d (%s)", gr.pin, m.label(gr.pinHost)))
	case w == 1 && m.c.Pilot.Hosts > 0:
		h := &m.e.Hosts[gr.hosts[0]]
		parts = append(parts, fmt.Sprintf("pilot: %s, %s criticality, %d dependant(s)", orStr(h.Environment, "no environment"), orStr(h.Criticality, "unset"), gr.deps))
	}
	// The latest predecessor explains the lower bound.
	var best *orderArc
	bestW := 0
	for i := range m.gpred[g] {
		a := &m.gpred[g][i]
		if pw := wave[a.g]; pw > bestW || pw == bestW && best != nil && a.lag > best.lag {
			best, bestW = a, pw
		}
	}
	if best != nil {
		switch {
		case best.lag > 0:
			parts = append(parts, fmt.Sprintf("after wave %d: %s", bestW, best.rule))
		case bestW < w:
			parts = append(parts, fmt.Sprintf("after wave %d: %s depends on %s (port %d)", bestW, m.label(best.host), m.label(best.other), m.arcPort(best.host, best.other)))
		default:
			parts = append(parts, fmt.Sprintf("same wave as its dependency %s (port %d)", m.label(best.other), m.arcPort(best.host, best.other)))
		}
	}
	if len(parts) == 0 || (best == nil && gr.pin == 0) {
		// Explain by the heaviest neighbour in the same wave, if any.
		var nb int32 = -1
		var nbw int64
		lo := m.gadj.off[g]
		for k, h := range m.gadj.out(int(g)) {
			if wave[h] == w && m.gadj.w[int(lo)+k] > nbw {
				nb, nbw = h, m.gadj.w[int(lo)+k]
			}
		}
		if nb >= 0 {
			parts = append(parts, fmt.Sprintf("with %s: %d connections between them", m.groups[nb].name, nbw))
		} else if len(parts) == 0 {
			parts = append(parts, "no dependencies: placed where capacity allowed")
		}
	}
	return strings.Join(parts, "; ")
}

// schedule fills replication and cutover times. Waves replicate one after
// another over the shared link (inside transfer windows, at each window's
// rate); each wave cuts over in the first cutover window after its copy
// ends and after the previous wave's cutover, ParallelMigrations hosts at a
// time.
func (m *model) schedule(p *Plan, sched schedule, warnings *[]string) {
	loc, _ := time.LoadLocation(m.c.Timezone)
	start, _ := parseStart(m.c.Start, loc)
	var cut []opening
	var cutSpecs []string
	for _, w := range m.c.CutoverWindows {
		ops, _ := openings(w)
		cut = append(cut, ops...)
		cutSpecs = append(cutSpecs, w)
	}
	slices.SortFunc(cut, func(a, b opening) int { return a.start - b.start })
	linkFree := start
	prevCut := start
	for i := range p.Waves {
		wv := &p.Waves[i]
		wv.WireBytes = int64(float64(wv.Bytes) * m.c.CompressionRatio)
		wv.ReplicationStart = linkFree
		end, ok := sched.finish(linkFree, float64(wv.WireBytes)*8)
		if !ok {
			end = linkFree
		}
		wv.ReplicationEnd = end
		wv.ReplicationHours = round2(end.Sub(linkFree).Hours())
		linkFree = end
		var worst time.Duration
		for _, mb := range wv.Members {
			d := time.Duration(mb.DowntimeMinutes * float64(time.Minute))
			worst = max(worst, d)
			if md := time.Duration(m.c.MaxDowntime); md > 0 && d > md {
				*warnings = append(*warnings, fmt.Sprintf("wave %d: %s needs about %s of downtime, over max_downtime %s", wv.Number, mb.Name, d.Round(time.Minute), md))
			}
		}
		batches := (len(wv.Members) + m.c.ParallelMigrations - 1) / m.c.ParallelMigrations
		need := time.Duration(batches) * worst
		from := end
		if prevCut.After(from) {
			from = prevCut
		}
		if len(cut) > 0 {
			a, b := nextOpening(cut, from)
			wv.CutoverStart = a
			if need > b.Sub(a) {
				*warnings = append(*warnings, fmt.Sprintf("wave %d: cutover needs about %s (%d batch(es) of %d), longer than its window of %s", wv.Number, need.Round(time.Minute), batches, m.c.ParallelMigrations, b.Sub(a)))
			}
		} else {
			wv.CutoverStart = from
		}
		wv.CutoverEnd = wv.CutoverStart.Add(need)
		prevCut = wv.CutoverEnd
		wv.Start, wv.End = wv.ReplicationStart, wv.CutoverEnd
		wv.DurationHours = round2(wv.End.Sub(wv.Start).Hours())
	}
}

func (m *model) metrics(p *Plan, wave []int) {
	mt := &p.Metrics
	mt.Waves = len(p.Waves)
	mt.Hosts = m.n
	mt.Groups = len(m.groups)
	mt.Placed = m.n - len(p.Unplaced)
	mt.TotalWeight, mt.CrossingWeight = m.crossing(wave)
	if mt.TotalWeight > 0 {
		mt.CrossingShare = round2(float64(mt.CrossingWeight) / float64(mt.TotalWeight) * 100)
	}
	mt.WaveHours = make([]float64, len(p.Waves))
	for i, w := range p.Waves {
		mt.WaveHours[i] = w.DurationHours
	}
	if len(p.Waves) > 0 {
		mt.Start, mt.End = p.Waves[0].Start, p.Waves[len(p.Waves)-1].End
		mt.DurationHours = round2(mt.End.Sub(mt.Start).Hours())
	}
	mt.CriticalPath = m.criticalPath(wave)
}

// crossing sums dependency weight between different groups and the part of
// it that crosses waves (both ends placed).
func (m *model) crossing(wave []int) (total, cross int64) {
	for g := 0; g < len(m.groups); g++ {
		lo := m.gadj.off[g]
		for k, h := range m.gadj.out(g) {
			if int(h) < g {
				continue // each undirected pair once
			}
			w := m.gadj.w[int(lo)+k]
			total += w
			if wave[g] > 0 && wave[h] > 0 && wave[g] != wave[h] {
				cross += w
			}
		}
	}
	return total, cross
}

// criticalPath is the longest chain of placed groups along order arcs,
// strict (before) steps counting more than dependencies.
func (m *model) criticalPath(wave []int) []string {
	ng := len(m.groups)
	best := make([]int, ng)
	prev := make([]int32, ng)
	order := m.topo()
	end := int32(-1)
	for _, g := range order {
		if wave[g] == 0 {
			continue
		}
		best[g], prev[g] = 1, -1
		for _, p := range m.gpred[g] {
			if m.bad[p.g] || wave[p.g] == 0 {
				continue
			}
			if c := best[p.g] + 1 + p.lag; c > best[g] {
				best[g], prev[g] = c, p.g
			}
		}
		if end < 0 || best[g] > best[end] {
			end = g
		}
	}
	var out []string
	for x := end; x >= 0; x = prev[x] {
		out = append(out, m.groups[x].name)
	}
	slices.Reverse(out)
	if out == nil {
		out = []string{}
	}
	return out
}
