package planner

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/i18n"
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
	// Waived lists wave rules that gave way to a higher one for a group.
	Waived []string `json:"waived"`
	// Suggestions are the applications inferred from traffic, with their
	// evidence; LabelConflicts labelled hosts whose traffic disagrees.
	Suggestions    []Suggestion    `json:"suggestions"`
	LabelConflicts []LabelConflict `json:"label_conflicts"`
	// SharedServices are the hosts kept out of grouping, with their policy.
	SharedServices []SharedService `json:"shared_services"`
	Metrics        Metrics         `json:"metrics"`
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
	// Production says the wave holds production (or unclassified) hosts.
	Production bool `json:"production"`
	// Confidence (high, medium, low) is how sure the grouping behind the
	// wave is; Risk (low, medium, high) how much could go wrong at its
	// cutover; each with the factors behind it.
	Confidence        string   `json:"confidence"`
	ConfidenceFactors []string `json:"confidence_factors"`
	Risk              string   `json:"risk"`
	RiskFactors       []string `json:"risk_factors"`
	Members           []Member `json:"members"`
}

// Member is a host in a wave and why it is there.
type Member struct {
	HostID string `json:"host_id"`
	Name   string `json:"name"`
	Group  string `json:"group"`
	Bytes  int64  `json:"bytes"`
	// DowntimeMinutes is the estimated cutover outage of this host.
	DowntimeMinutes float64 `json:"downtime_minutes"`
	// Reason is the English text of Reasons, joined by "; ".
	Reason string `json:"reason"`
	// Reasons say why the host is in this wave as codes with parameters
	// (i18n; the catalogs translate them): what it moves with, the
	// constraint that set its wave, what its shared services mean for it.
	// Kind is group, shared, wave, devtest or latency.
	Reasons []i18n.Finding `json:"reasons,omitempty"`
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
	// Resolution says what the planner did so the rest could be planned:
	// which rule or pin it ignored, or that the group was left out.
	Resolution string `json:"resolution"`
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
	// whose ends are in different waves; CrossingShare is CrossingWeight /
	// TotalWeight as a fraction (0.143 = 14.3 %), formatted as a
	// percentage only where it is shown. The NonShared figures are the
	// same without the edges to and from shared services.
	TotalWeight             int64   `json:"total_weight"`
	CrossingWeight          int64   `json:"crossing_weight"`
	CrossingShare           float64 `json:"crossing_share"`
	NonSharedWeight         int64   `json:"non_shared_weight"`
	NonSharedCrossingWeight int64   `json:"non_shared_crossing_weight"`
	// Applications counts the applications (labelled and inferred) with
	// hosts placed; ApplicationsWhole those whose placed hosts share one wave.
	Applications      int `json:"applications"`
	ApplicationsWhole int `json:"applications_whole"`
	SharedServices    int `json:"shared_services"`
	// KeptOnPremises counts shared-service hosts left out of every wave by
	// the on_premises policy (they are neither placed nor unplaced).
	KeptOnPremises int `json:"kept_on_premises"`
	Suggestions    int `json:"suggestions"`
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
	p := &Plan{Cycles: m.cycles, Infeasible: m.infeasible, Warnings: warnings, Waived: m.waived,
		Suggestions: m.suggestions, LabelConflicts: m.labelConflicts, SharedServices: m.sharedList}
	if p.Waived == nil {
		p.Waived = []string{}
	}
	if p.Suggestions == nil {
		p.Suggestions = []Suggestion{}
	}
	if p.LabelConflicts == nil {
		p.LabelConflicts = []LabelConflict{}
	}
	if p.SharedServices == nil {
		p.SharedServices = []SharedService{}
	}
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
	m.firstProd = 0
	for g, w := range wave {
		if w > 0 && m.groups[g].prod && !m.groups[g].shared && (m.firstProd == 0 || w < m.firstProd) {
			m.firstProd = w
		}
	}
	for i := range p.SharedServices {
		s := &p.SharedServices[i]
		v := m.idx[s.HostID]
		s.Wave = wave[m.hostGroup[v]]
	}
	for v := 0; v < m.n; v++ {
		g := m.hostGroup[v]
		h := &m.e.Hosts[v]
		if wave[g] == 0 && int(g) < len(m.onPrem) && m.onPrem[g] {
			continue // listed under SharedServices with wave 0
		}
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
		reasons := m.reason(int32(v), wave)
		wv.Members = append(wv.Members, Member{
			HostID: h.ID, Name: h.Label(), Group: p.Groups[g].ID, Bytes: b,
			DowntimeMinutes: round2(m.downtime(b).Minutes()),
			Reason:          ReasonText("en", reasons),
			Reasons:         reasons,
		})
	}
	m.schedule(p, sched, &p.Warnings)
	m.metrics(p, wave)
	m.rate(p, wave)
	m.checkRules(p, wave)
	return p, nil
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// downtime estimates one host's cutover outage: the fixed overhead plus the
// final delta over the whole link.
func (m *model) downtime(used int64) time.Duration {
	bits := float64(used) * m.c.FinalDeltaRatio * m.c.CompressionRatio * 8
	return time.Duration(m.c.CutoverOverhead) + time.Duration(bits/float64(m.c.Bandwidth)*float64(time.Second))
}

// ReasonText renders a member's reasons in lang, joined by "; ".
func ReasonText(lang string, rs []i18n.Finding) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Msg().Text(lang)
	}
	return strings.Join(parts, "; ")
}

func reasonOf(kind string, m i18n.Msg) i18n.Finding {
	return i18n.Finding{Kind: kind, Code: m.Code, Params: m.Params}
}

// reason explains a member's wave: what it moves with, then the binding
// reason for this wave (not only a lower bound), then what its shared
// services mean for it.
func (m *model) reason(v int32, wave []int) []i18n.Finding {
	g := m.hostGroup[v]
	gr := m.groups[g]
	var parts []i18n.Finding
	if len(gr.hosts) > 1 {
		parts = append(parts, reasonOf("group", i18n.M("plan.member.moves_with", "sources", sourceMsgs(gr.sources))))
	}
	if m.shared[v] {
		parts = append(parts, reasonOf("shared", m.sharedMsg(v)))
	}
	parts = append(parts, reasonOf("wave", m.whyWave(g, wave)))
	if int(g) < len(m.devTestWaived) && m.devTestWaived[g] {
		parts = append(parts, reasonOf("devtest", i18n.M("plan.member.devtest_waived")))
	}
	if !m.shared[v] {
		if t := m.callsShared(v, wave); t.Code != "" {
			parts = append(parts, reasonOf("latency", t))
		}
	}
	return parts
}

// sourceMsgs turns what holds a group together ("application shop",
// "cycle a ↔ b", "keep-together sap", "groups call each other: ...") into
// messages, so the words around the names are translated.
func sourceMsgs(sources []string) []i18n.Msg {
	out := make([]i18n.Msg, 0, len(sources))
	for _, s := range sources {
		switch {
		case strings.HasPrefix(s, "suggested application "):
			out = append(out, i18n.M("plan.group.suggested", "name", strings.TrimPrefix(s, "suggested application ")))
		case strings.HasPrefix(s, "application "):
			out = append(out, i18n.M("plan.group.application", "name", strings.TrimPrefix(s, "application ")))
		case strings.HasPrefix(s, "cycle "):
			out = append(out, i18n.M("plan.group.cycle", "chain", strings.TrimPrefix(s, "cycle ")))
		case strings.HasPrefix(s, "keep-together "):
			out = append(out, i18n.M("plan.group.keep_together", "name", strings.TrimPrefix(s, "keep-together ")))
		case strings.HasPrefix(s, "groups call each other: "):
			out = append(out, i18n.M("plan.group.groups_cycle", "chain", strings.TrimPrefix(s, "groups call each other: ")))
		default:
			out = append(out, i18n.M("plan.group.other", "text", s))
		}
	}
	return out
}

// whyWave gives the constraint that put group g in its wave.
func (m *model) whyWave(g int32, wave []int) i18n.Msg {
	gr := m.groups[g]
	w := wave[g]
	if gr.pin > 0 {
		return i18n.M("plan.member.pinned", "wave", gr.pin, "host", m.label(gr.pinHost))
	}
	wrap := func(x i18n.Msg) i18n.Msg {
		if gr.droppedPin != "" {
			return i18n.M("plan.member.pin_ignored", "why", gr.droppedPin, "then", x)
		}
		return x
	}
	if w == 1 && m.c.Pilot.Hosts > 0 {
		h := &m.e.Hosts[gr.hosts[0]]
		return wrap(i18n.M("plan.member.pilot", "environment", orStr(h.Environment, "no environment"), "criticality", orStr(h.Criticality, "unset"), "deps", gr.deps))
	}
	// The lower bound and what sets it.
	lb, why := m.baseWave(gr), i18n.Msg{}
	if lb > 1 {
		why = m.baseMsg(gr)
	}
	var best *orderArc
	for i := range m.gpred[g] {
		a := &m.gpred[g][i]
		pw := wave[a.g]
		if pw == 0 {
			continue
		}
		if b := pw + a.lag; b > lb || b == lb && (why.Code == "" || best != nil && a.lag > best.lag) {
			lb, best = b, a
			why = i18n.Msg{}
		}
	}
	if best != nil {
		pw := wave[best.g]
		switch {
		case best.lag > 0:
			why = i18n.M("plan.member.after_wave", "wave", pw, "rule", best.rule)
		default:
			why = i18n.M("plan.member.depends_on", "host", m.label(best.host), "other", m.label(best.other), "port", m.arcPort(best.host, best.other), "wave", pw)
		}
	}
	if gr.prod && !gr.shared && m.firstProd > 1 && on(m.c.WaveRules.DevTestFirst) && m.firstProd > lb {
		lb = m.firstProd
		why = i18n.M("plan.member.devtest_first", "wave", m.firstProd)
	}
	if w > lb {
		switch {
		case int(g) < len(m.improvedTo) && m.improvedTo[g].Code != "":
			return wrap(i18n.M("plan.member.improved", "wave", w, "why", m.improvedTo[g]))
		case int(g) < len(m.missWhy) && m.missWhy[g].kind != missNone:
			if why.Code == "" {
				return wrap(i18n.M("plan.member.could_move_but", "from", lb, "miss", m.missMsg(m.missWhy[g])))
			}
			return wrap(i18n.M("plan.member.could_move_why_but", "from", lb, "why", why, "miss", m.missMsg(m.missWhy[g])))
		}
		if why.Code == "" {
			return wrap(i18n.M("plan.member.first_room", "from", lb, "wave", w))
		}
		return wrap(i18n.M("plan.member.first_room_why", "from", lb, "why", why, "wave", w))
	}
	if why.Code != "" {
		if best != nil && best.lag == 0 && wave[best.g] == w {
			why = i18n.M("plan.member.same_wave_dep", "other", m.label(best.other), "port", m.arcPort(best.host, best.other))
		}
		return wrap(why)
	}
	// Wave 1 with nothing before it: say what it has, truly.
	if len(m.gpred[g]) == 0 && len(m.gsucc[g]) == 0 && m.gall.off[g] == m.gall.off[g+1] {
		return wrap(i18n.M("plan.member.no_deps"))
	}
	if nb := m.heaviestIn(int(g), w, wave); nb.Code != "" && len(m.gpred[g]) == 0 {
		return wrap(i18n.M("plan.member.nothing_earlier_joins", "joins", nb))
	}
	if len(m.gpred[g]) == 0 {
		return wrap(i18n.M("plan.member.nothing_earlier", "n", len(m.gsucc[g])))
	}
	return wrap(i18n.M("plan.member.deps_same_wave"))
}

// sharedMsg says what a shared service is and how it is placed.
func (m *model) sharedMsg(v int32) i18n.Msg {
	var s *SharedService
	for i := range m.sharedList {
		if m.sharedList[i].HostID == m.e.Hosts[v].ID {
			s = &m.sharedList[i]
		}
	}
	if s == nil {
		return i18n.M("plan.shared.plain")
	}
	switch s.Policy {
	case PolicyLast:
		return i18n.M("plan.shared.last", "why", s.Why, "callers", s.Callers)
	case PolicyOnPremises:
		return i18n.M("plan.shared.on_premises", "why", s.Why)
	}
	return i18n.M("plan.shared.early", "why", s.Why, "callers", s.Callers)
}

// callsShared warns a host that calls a shared service that moves after
// it (policy last) or stays behind (on_premises): latency across the link.
func (m *model) callsShared(v int32, wave []int) i18n.Msg {
	if m.r.SharedServices.Policy == PolicyEarly {
		return i18n.Msg{}
	}
	w := wave[m.hostGroup[v]]
	var calls []i18n.Msg
	for _, u := range m.sharedOf(v) {
		sw := wave[m.hostGroup[u]]
		if m.r.SharedServices.Policy == PolicyOnPremises || sw > w {
			calls = append(calls, i18n.M("plan.member.call", "host", m.label(u), "port", m.arcPort(v, u)))
		}
	}
	if len(calls) == 0 {
		return i18n.Msg{}
	}
	if m.r.SharedServices.Policy == PolicyOnPremises {
		return i18n.M("plan.member.latency_on_premises", "calls", calls)
	}
	return i18n.M("plan.member.latency_link", "calls", calls)
}

// schedule fills replication and cutover times. Waves replicate one after
// another over the shared link (inside transfer windows, at each window's
// rate); each wave cuts over in the first cutover window after its copy
// ends and after the previous wave's cutover, ParallelMigrations hosts at a
// time.
func (m *model) schedule(p *Plan, sched link, warnings *[]string) {
	start, _ := parseStart(m.c.Start, m.c.location())
	cut, _ := m.c.cutoverSchedule() // validated: see Constraints.Validate
	linkFree := start
	prevCut := start
	m.overWindow = map[int]string{}
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
		if cut != nil {
			// The first cutover window that opens after from; a schedule
			// that is open and never closes ("Daily 00:00-24:00") is
			// open at from.
			w, ok := cut.NextOpening(from)
			switch {
			case !ok && cut.IsOpen(from):
				w = ferry.Period{Start: from}
			case !ok:
				w = ferry.Period{Start: from, End: from}
				*warnings = append(*warnings, fmt.Sprintf("wave %d: no cutover window opens after %s", wv.Number, from.Format("2006-01-02 15:04")))
			}
			wv.CutoverStart = w.Start
			if long := w.End.Sub(w.Start); !w.End.IsZero() && need > long {
				m.overWindow[wv.Number] = fmt.Sprintf("cutover needs about %s, longer than its %s window", need.Round(time.Minute), long)
				*warnings = append(*warnings, fmt.Sprintf("wave %d: cutover needs about %s (%d batch(es) of %d), longer than its window of %s", wv.Number, need.Round(time.Minute), batches, m.c.ParallelMigrations, long))
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
	for g, o := range m.onPrem {
		if o {
			mt.KeptOnPremises += len(m.groups[g].hosts)
		}
	}
	mt.Placed -= mt.KeptOnPremises
	m.fillCrossing(mt, wave)
	mt.SharedServices, mt.Suggestions = len(m.sharedList), len(m.suggestions)
	appWave := map[int32]int{}
	split := map[int32]bool{}
	for v := 0; v < m.n; v++ {
		a, w := m.app[v], wave[m.hostGroup[v]]
		if a < 0 || w == 0 {
			continue
		}
		if pw, ok := appWave[a]; ok && pw != w {
			split[a] = true
		}
		appWave[a] = w
	}
	mt.Applications, mt.ApplicationsWhole = len(appWave), len(appWave)-len(split)
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

// crossing sums the weight of g (undirected group weights) between
// different groups and the part of it that crosses waves (both ends placed).
func crossing(g *csr, wave []int) (total, cross int64) {
	for x := 0; x < g.n(); x++ {
		lo := g.off[x]
		for k, h := range g.out(x) {
			if int(h) < x {
				continue // each undirected pair once
			}
			w := g.w[int(lo)+k]
			total += w
			if wave[x] > 0 && wave[h] > 0 && wave[x] != wave[h] {
				cross += w
			}
		}
	}
	return total, cross
}

// fillCrossing sets the crossing metrics; the share is of the same total,
// as a fraction.
func (m *model) fillCrossing(mt *Metrics, wave []int) {
	mt.TotalWeight, mt.CrossingWeight = crossing(m.gall, wave)
	mt.NonSharedWeight, mt.NonSharedCrossingWeight = crossing(m.gadj, wave)
	if mt.TotalWeight > 0 {
		mt.CrossingShare = round4(float64(mt.CrossingWeight) / float64(mt.TotalWeight))
	}
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

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
