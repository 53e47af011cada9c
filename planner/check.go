package planner

import (
	"fmt"
	"slices"
	"strings"
)

// Move is a manual edit: put a host (or its whole move group) in another wave.
type Move struct {
	HostID string `json:"host_id"`
	ToWave int    `json:"to_wave"`
	// WholeGroup moves every host of the host's move group with it.
	WholeGroup bool `json:"whole_group"`
}

// Violation is a rule a Move would break.
type Violation struct {
	Kind    string   `json:"kind"` // group, order, before, capacity, keep-apart, pin, pilot, wave
	Message string   `json:"message"`
	Hosts   []string `json:"hosts"`
}

// CheckMove reports every violation that applying mv to plan p would cause,
// without changing p: dependency order, before rules, capacity, keep-apart,
// pins, pilot eligibility and splitting a move group. An empty result means
// the move is safe. The error is for bad input only (unknown host, invalid
// estate or constraints). p must have been built from the same inputs.
func CheckMove(e *Estate, r Rules, c Constraints, p *Plan, mv Move) ([]Violation, error) {
	m, err := newModel(e, r, c)
	if err != nil {
		return nil, err
	}
	hi, ok := m.idx[mv.HostID]
	if !ok {
		return nil, Problems{fmt.Sprintf("host_id: %q is not a host in the estate", mv.HostID)}
	}
	m.prepare()
	waveOf := make([]int, m.n)
	hostsIn := make([]int, len(p.Waves)+2)
	bytesIn := make([]int64, len(p.Waves)+2)
	for _, w := range p.Waves {
		for _, mb := range w.Members {
			if i, ok := m.idx[mb.HostID]; ok {
				waveOf[i] = w.Number
				hostsIn[w.Number]++
				bytesIn[w.Number] += m.e.Hosts[i].UsedBytes()
			}
		}
	}
	to := mv.ToWave
	var out []Violation
	add := func(kind, msg string, hs ...int32) {
		out = append(out, Violation{Kind: kind, Message: msg, Hosts: hostIDs(m, hs)})
	}
	if to < 1 || to > len(p.Waves)+1 {
		add("wave", fmt.Sprintf("wave %d does not exist: the plan has waves 1 to %d (%d opens a new last wave)", to, len(p.Waves), len(p.Waves)+1), hi)
		return out, nil
	}
	g := m.groups[m.hostGroup[hi]]
	moving := []int32{hi}
	if mv.WholeGroup {
		moving = g.hosts
	} else if len(g.hosts) > 1 {
		var stay []int32
		for _, h := range g.hosts {
			if h != hi && waveOf[h] != to {
				stay = append(stay, h)
			}
		}
		if len(stay) > 0 {
			add("group", fmt.Sprintf("%s moves with %s; moving it alone leaves %s behind (move the whole group instead)",
				m.label(hi), strings.Join(g.sources, "; "), labels(m, stay, 5)), append([]int32{hi}, stay...)...)
		}
	}
	in := map[int32]bool{}
	for _, h := range moving {
		in[h] = true
	}
	after := func(h int32) int {
		if in[h] {
			return to
		}
		return waveOf[h]
	}
	for _, h := range moving {
		lo := m.dep.off[h]
		for k, u := range m.dep.out(int(h)) {
			if !in[u] && waveOf[u] > to {
				add("order", fmt.Sprintf("%s depends on %s (port %d), which is in wave %d, later than wave %d", m.label(h), m.label(u), m.depPort[int(lo)+k], waveOf[u], to), h, u)
			}
		}
		for _, u := range m.rdep.out(int(h)) {
			if !in[u] && waveOf[u] > 0 && waveOf[u] < to {
				add("order", fmt.Sprintf("%s (wave %d) depends on %s (port %d), so %s cannot move to later wave %d", m.label(u), waveOf[u], m.label(h), m.arcPort(u, h), m.label(h), to), u, h)
			}
		}
		for _, o := range m.apartOf[h] {
			if after(o) == to {
				add("keep-apart", fmt.Sprintf("a rule keeps %s and %s apart, and %s is in wave %d", m.label(h), m.label(o), m.label(o), to), h, o)
			}
		}
	}
	for i, b := range m.r.Before {
		for _, x := range m.resolve(b.First) {
			for _, y := range m.resolve(b.Then) {
				if !in[x] && !in[y] {
					continue
				}
				if wx, wy := after(x), after(y); wx > 0 && wy > 0 && wx >= wy {
					add("before", fmt.Sprintf("rules.before[%d]: %s must be in an earlier wave than %s (would be %d and %d)", i, m.label(x), m.label(y), wx, wy), x, y)
				}
			}
		}
	}
	pinOf := map[int32]int{}
	for i := range m.e.Hosts {
		if pw := m.e.Hosts[i].PinnedWave; pw > 0 {
			pinOf[int32(i)] = pw
		}
	}
	for _, ref := range sortedKeys(m.r.Pins) {
		for _, h := range m.resolve(ref) {
			pinOf[h] = m.r.Pins[ref]
		}
	}
	var addH int
	var addB int64
	for _, h := range moving {
		if pw, ok := pinOf[h]; ok && pw != to {
			add("pin", fmt.Sprintf("%s is pinned to wave %d", m.label(h), pw), h)
		}
		if waveOf[h] != to {
			addH++
			addB += m.e.Hosts[h].UsedBytes()
		}
	}
	pilot := len(p.Waves) > 0 && p.Waves[0].Pilot
	capH := m.waveCap()
	if pilot && to == 1 {
		capH = m.pilotCap()
		if !g.eligible {
			add("pilot", fmt.Sprintf("wave 1 is the pilot wave and %s is not low-risk (environment, criticality or %d dependants)", g.name, g.deps), hi)
		}
	}
	if capH > 0 && hostsIn[to]+addH > capH {
		add("capacity", fmt.Sprintf("wave %d would hold %d hosts, over the cap of %d", to, hostsIn[to]+addH, capH), hi)
	}
	if mb := int64(m.c.MaxBytesPerWave); mb > 0 && bytesIn[to]+addB > mb {
		add("capacity", fmt.Sprintf("wave %d would hold %s, over max_bytes_per_wave %s", to, fmtBytes(bytesIn[to]+addB), fmtBytes(mb)), hi)
	}
	if out == nil {
		out = []Violation{}
	}
	return out, nil
}

func labels(m *model, hs []int32, limit int) string {
	var names []string
	for i, h := range hs {
		if i == limit {
			names = append(names, fmt.Sprintf("and %d more", len(hs)-limit))
			break
		}
		names = append(names, m.label(h))
	}
	return strings.Join(names, ", ")
}

// Baseline is the naive plan the packer is measured against: the same move
// groups, ordered by topological generation (groups with no dependencies
// first, then those that only depend on them, ...) and poured into waves in
// that order under the same host and byte caps. It returns the metrics
// only (waves and crossing weight).
func Baseline(e *Estate, r Rules, c Constraints) (Metrics, error) {
	m, err := newModel(e, r, c)
	if err != nil {
		return Metrics{}, err
	}
	m.prepare()
	level := make([]int, len(m.groups))
	order := m.topo()
	for _, g := range order {
		for _, p := range m.gpred[g] {
			if !m.bad[p.g] {
				level[g] = max(level[g], level[p.g]+1)
			}
		}
	}
	slices.SortStableFunc(order, func(a, b int32) int { return level[a] - level[b] })
	wave := make([]int, len(m.groups))
	w, hosts, bytes := 1, 0, int64(0)
	for _, g := range order {
		gr := m.groups[g]
		full := (m.c.MaxHostsPerWave > 0 && hosts+len(gr.hosts) > m.c.MaxHostsPerWave) ||
			(m.c.MaxBytesPerWave > 0 && bytes+gr.bytes > int64(m.c.MaxBytesPerWave))
		for _, p := range m.gpred[g] {
			if p.lag > 0 && wave[p.g] == w {
				full = true
			}
		}
		if full && hosts > 0 {
			w, hosts, bytes = w+1, 0, 0
		}
		wave[g] = w
		hosts += len(gr.hosts)
		bytes += gr.bytes
	}
	var mt Metrics
	mt.Waves = w
	mt.Groups = len(m.groups)
	mt.Hosts = m.n
	m.fillCrossing(&mt, wave)
	return mt, nil
}

// ApplyMove checks mv and, when it breaks nothing, returns a new plan with
// the host's whole move group in the target wave and the reasons, schedule
// and metrics recomputed. When it would break something the plan is not
// changed and the violations come back instead. p itself is never modified.
func ApplyMove(e *Estate, r Rules, c Constraints, p *Plan, mv Move) (*Plan, []Violation, error) {
	vs, err := CheckMove(e, r, c, p, mv)
	if err != nil || len(vs) > 0 {
		return nil, vs, err
	}
	m, err := newModel(e, r, c)
	if err != nil {
		return nil, nil, err
	}
	m.prepare()
	hostWave := make(map[string]int, m.n)
	for _, w := range p.Waves {
		for _, mb := range w.Members {
			hostWave[mb.HostID] = w.Number
		}
	}
	wave := make([]int, len(m.groups))
	for gi, g := range m.groups {
		wave[gi] = hostWave[m.e.Hosts[g.hosts[0]].ID]
		if wave[gi] == 0 && !m.bad[gi] {
			m.bad[gi] = true
			m.badWhy[gi] = "not placed in the edited plan"
		}
	}
	wave[m.hostGroup[m.idx[mv.HostID]]] = mv.ToWave
	if len(p.Waves) > 0 && !p.Waves[0].Pilot {
		m.c.Pilot.Hosts = 0
	}
	m.infeasible = p.Infeasible
	np, err := m.render(wave, append([]string{}, p.Warnings...))
	return np, nil, err
}
