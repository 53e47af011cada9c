package planner

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

const noDeadline = math.MaxInt32

// prepare derives the group-level graph and every rule, and marks what can
// never be placed, with the chain of facts that makes it so.
func (m *model) prepare() {
	ng := len(m.groups)
	m.bad = make([]bool, ng)
	m.badWhy = make([]string, ng)
	m.gpred = make([][]orderArc, ng)
	m.gsucc = make([][]orderArc, ng)

	// Group dependency arcs, one per group pair, represented by its heaviest host arc.
	type garc struct {
		a, b int32 // group a depends on group b
		w    int64
		v, u int32
	}
	var ga []garc
	var aff []arc
	for v := 0; v < m.n; v++ {
		lo := m.dep.off[v]
		for k, u := range m.dep.out(v) {
			a, b := m.hostGroup[v], m.hostGroup[u]
			if a == b {
				continue
			}
			w := m.dep.w[int(lo)+k]
			ga = append(ga, garc{a, b, w, int32(v), u})
			aff = append(aff, arc{a, b, w}, arc{b, a, w})
		}
	}
	slices.SortFunc(ga, func(x, y garc) int {
		if x.a != y.a {
			return int(x.a - y.a)
		}
		if x.b != y.b {
			return int(x.b - y.b)
		}
		if x.w != y.w {
			if x.w > y.w {
				return -1
			}
			return 1
		}
		return int(x.v - y.v)
	})
	for i, x := range ga {
		if i > 0 && ga[i-1].a == x.a && ga[i-1].b == x.b {
			continue
		}
		m.gpred[x.a] = append(m.gpred[x.a], orderArc{g: x.b, host: x.v, other: x.u})
		m.gsucc[x.b] = append(m.gsucc[x.b], orderArc{g: x.a, host: x.u, other: x.v})
	}
	m.gadj = buildCSR(ng, aff)

	// Dependants outside the group, for pilot eligibility.
	for v := 0; v < m.n; v++ {
		g := m.groups[m.hostGroup[v]]
		for _, u := range m.rdep.out(v) {
			if m.hostGroup[u] != m.hostGroup[v] {
				g.deps++
			}
		}
	}
	envOK, critOK := map[string]bool{}, map[string]bool{}
	for _, e := range m.c.Pilot.Environments {
		envOK[e] = true
	}
	for _, c := range m.c.Pilot.Criticality {
		critOK[c] = true
	}
	for _, g := range m.groups {
		g.eligible = g.deps <= m.c.Pilot.MaxDependants
		for _, h := range g.hosts {
			hh := &m.e.Hosts[h]
			if !envOK[hh.Environment] || !critOK[hh.Criticality] {
				g.eligible = false
				break
			}
		}
	}

	// Keep-apart.
	m.apartOf = map[int32][]int32{}
	for _, k := range m.r.KeepApart {
		for _, a := range m.resolve(k[0]) {
			for _, b := range m.resolve(k[1]) {
				if a == b {
					continue
				}
				if m.hostGroup[a] == m.hostGroup[b] {
					g := m.groups[m.hostGroup[a]]
					m.fail(g, "keep-apart", fmt.Sprintf("rule keeps %s and %s apart, but they must move together (%s)", m.label(a), m.label(b), strings.Join(g.sources, "; ")),
						[]string{"keep apart " + m.label(a) + " / " + m.label(b), m.label(a) + " and " + m.label(b) + ": " + strings.Join(g.sources, "; ")}, a, b)
					continue
				}
				m.keepApart = append(m.keepApart, [2]int32{a, b})
				m.apartOf[a] = append(m.apartOf[a], b)
				m.apartOf[b] = append(m.apartOf[b], a)
			}
		}
	}

	// Pins: the estate's pinned_wave, then rules.pins.
	pinOf := make(map[int32]int)
	for i := range m.e.Hosts {
		if p := m.e.Hosts[i].PinnedWave; p > 0 {
			pinOf[int32(i)] = p
		}
	}
	for _, ref := range sortedKeys(m.r.Pins) {
		for _, h := range m.resolve(ref) {
			pinOf[h] = m.r.Pins[ref]
		}
	}
	for _, h := range sortedInt32Keys(pinOf) {
		g := m.groups[m.hostGroup[h]]
		if m.bad[g.id] {
			continue
		}
		if g.pin == 0 {
			g.pin, g.pinHost = pinOf[h], h
			continue
		}
		if g.pin != pinOf[h] {
			m.fail(g, "pin-conflict", fmt.Sprintf("%s is pinned to wave %d and %s to wave %d, but they move together (%s)",
				m.label(g.pinHost), g.pin, m.label(h), pinOf[h], strings.Join(g.sources, "; ")),
				[]string{fmt.Sprintf("%s pinned to wave %d", m.label(g.pinHost), g.pin), strings.Join(g.sources, "; "), fmt.Sprintf("%s pinned to wave %d", m.label(h), pinOf[h])}, g.pinHost, h)
		}
	}

	// Before rules become strict arcs.
	seen := map[[2]int32]bool{}
	for i, b := range m.r.Before {
		for _, x := range m.resolve(b.First) {
			for _, y := range m.resolve(b.Then) {
				gx, gy := m.hostGroup[x], m.hostGroup[y]
				rule := fmt.Sprintf("rules.before[%d]: %s before %s", i, b.First, b.Then)
				if gx == gy {
					g := m.groups[gx]
					m.fail(g, "rule-conflict", fmt.Sprintf("%s, but %s and %s must move together (%s)", rule, m.label(x), m.label(y), strings.Join(g.sources, "; ")),
						[]string{rule, m.label(x) + " and " + m.label(y) + ": " + strings.Join(g.sources, "; ")}, x, y)
					continue
				}
				if seen[[2]int32{gx, gy}] {
					continue
				}
				seen[[2]int32{gx, gy}] = true
				m.gpred[gy] = append(m.gpred[gy], orderArc{g: gx, lag: 1, host: y, other: x, rule: rule})
				m.gsucc[gx] = append(m.gsucc[gx], orderArc{g: gy, lag: 1, host: x, other: y, rule: rule})
			}
		}
	}

	// Groups too big for any wave.
	for _, g := range m.groups {
		if m.bad[g.id] {
			continue
		}
		if mh := m.c.MaxHostsPerWave; mh > 0 && len(g.hosts) > mh {
			m.fail(g, "too-big", fmt.Sprintf("group %s has %d hosts, more than max_hosts_per_wave %d%s", g.name, len(g.hosts), mh, g.why()),
				[]string{"group " + g.name + g.why(), fmt.Sprintf("%d hosts > max_hosts_per_wave %d", len(g.hosts), mh)}, g.hosts...)
		} else if mb := int64(m.c.MaxBytesPerWave); mb > 0 && g.bytes > mb {
			m.fail(g, "too-big", fmt.Sprintf("group %s holds %s, more than max_bytes_per_wave %s%s", g.name, fmtBytes(g.bytes), fmtBytes(mb), g.why()),
				[]string{"group " + g.name + g.why(), fmt.Sprintf("%s > max_bytes_per_wave %s", fmtBytes(g.bytes), fmtBytes(mb))}, g.hosts...)
		} else if g.pin == 1 && m.c.Pilot.Hosts > 0 && len(g.hosts) > m.c.Pilot.Hosts {
			m.fail(g, "too-big", fmt.Sprintf("group %s is pinned to the pilot wave but has %d hosts, more than pilot.hosts %d", g.name, len(g.hosts), m.c.Pilot.Hosts),
				[]string{fmt.Sprintf("%s pinned to wave 1", m.label(g.pinHost)), fmt.Sprintf("%d hosts > pilot.hosts %d", len(g.hosts), m.c.Pilot.Hosts)}, g.hosts...)
		}
	}

	// Order cycles: only possible through before rules, since dependency
	// cycles were merged into groups.
	var oarcs []arc
	for g := range m.groups {
		for _, p := range m.gpred[g] {
			oarcs = append(oarcs, arc{p.g, int32(g), 1})
		}
	}
	og := buildCSR(ng, oarcs)
	oc, _ := sccs(og)
	csize := map[int32]int{}
	for g := range m.groups {
		csize[oc[g]]++
	}
	reported := map[int32]bool{}
	for g := range m.groups {
		if csize[oc[g]] < 2 {
			continue
		}
		if !reported[oc[g]] {
			reported[oc[g]] = true
			path := cyclePath(og, oc, int32(g))
			var chain []string
			for i := 0; i+1 < len(path); i++ {
				chain = append(chain, m.arcText(path[i], path[i+1]))
			}
			m.fail(m.groups[g], "order-cycle", "before rules and dependencies form a loop: "+strings.Join(chain, "; "), chain, m.groups[g].hosts...)
		}
		m.bad[g] = true
		if m.badWhy[g] == "" {
			m.badWhy[g] = "part of the order loop reported as infeasible"
		}
	}
	m.cascade()
}

// arcText explains why group a must not come after group b (b succeeds a).
func (m *model) arcText(a, b int32) string {
	for _, s := range m.gsucc[a] {
		if s.g == b {
			if s.lag == 1 {
				return s.rule
			}
			return fmt.Sprintf("%s depends on %s (port %d)", m.label(s.other), m.label(s.host), m.arcPort(s.other, s.host))
		}
	}
	return m.groups[a].name + " before " + m.groups[b].name
}

func (m *model) fail(g *group, kind, msg string, chain []string, hosts ...int32) {
	m.bad[g.id] = true
	m.badWhy[g.id] = msg
	inf := Infeasibility{Kind: kind, Group: g.name, Message: msg, Chain: chain}
	for _, h := range hosts {
		inf.Hosts = append(inf.Hosts, m.e.Hosts[h].ID)
	}
	m.infeasible = append(m.infeasible, inf)
}

// cascade marks every successor of a bad group as blocked: placing it
// would break an order the bad group's absence leaves undecidable.
func (m *model) cascade() {
	var queue []int32
	for g, b := range m.bad {
		if b {
			queue = append(queue, int32(g))
		}
	}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		for _, s := range m.gsucc[g] {
			if !m.bad[s.g] {
				m.bad[s.g] = true
				m.badWhy[s.g] = fmt.Sprintf("blocked: %s, and %s cannot be placed", m.arcText(g, s.g), m.groups[g].name)
				queue = append(queue, s.g)
			}
		}
	}
}

// topo returns the good groups in an order where every predecessor comes first.
func (m *model) topo() []int32 {
	ng := len(m.groups)
	pending := make([]int32, ng)
	var q []int32
	for g := 0; g < ng; g++ {
		if m.bad[g] {
			continue
		}
		for _, p := range m.gpred[g] {
			if !m.bad[p.g] {
				pending[g]++
			}
		}
		if pending[g] == 0 {
			q = append(q, int32(g))
		}
	}
	for i := 0; i < len(q); i++ {
		for _, s := range m.gsucc[q[i]] {
			if m.bad[s.g] {
				continue
			}
			pending[s.g]--
			if pending[s.g] == 0 {
				q = append(q, s.g)
			}
		}
	}
	return q
}

// bounds computes, for every good group, the earliest wave its pin, the
// pilot rule and its predecessors allow, and the latest wave its pin and its
// successors' pins allow. Groups where the two cross are infeasible; the
// chain names the pins and arcs on both sides. It repeats until stable,
// since failing one group frees others.
func (m *model) bounds() (earliest, deadline []int) {
	ng := len(m.groups)
	for round := 0; ; round++ {
		earliest = make([]int, ng)
		deadline = make([]int, ng)
		epred := make([]int32, ng)
		dsucc := make([]int32, ng)
		order := m.topo()
		for _, g := range order {
			gr := m.groups[g]
			earliest[g], epred[g] = m.baseWave(gr), -1
			for _, p := range m.gpred[g] {
				if m.bad[p.g] {
					continue
				}
				if e := earliest[p.g] + p.lag; e > earliest[g] {
					earliest[g], epred[g] = e, p.g
				}
			}
		}
		for i := len(order) - 1; i >= 0; i-- {
			g := order[i]
			deadline[g], dsucc[g] = noDeadline, -1
			if p := m.groups[g].pin; p > 0 {
				deadline[g] = p
			}
			for _, s := range m.gsucc[g] {
				if m.bad[s.g] {
					continue
				}
				if d := deadline[s.g] - s.lag; d < deadline[g] {
					deadline[g], dsucc[g] = d, s.g
				}
			}
		}
		failed := false
		for _, g := range order {
			if deadline[g] >= earliest[g] && deadline[g] >= 1 {
				continue
			}
			failed = true
			var chain []string
			var back []string
			x := g
			for epred[x] >= 0 {
				back = append(back, m.arcText(epred[x], x))
				x = epred[x]
			}
			chain = append(chain, m.baseText(m.groups[x]))
			slices.Reverse(back)
			chain = append(chain, back...)
			x = g
			for dsucc[x] >= 0 {
				chain = append(chain, m.arcText(x, dsucc[x]))
				x = dsucc[x]
			}
			if p := m.groups[x].pin; p > 0 {
				chain = append(chain, fmt.Sprintf("%s pinned to wave %d", m.label(m.groups[x].pinHost), p))
			}
			gr := m.groups[g]
			m.fail(gr, "pin-order", fmt.Sprintf("group %s would need a wave ≥ %d and ≤ %d: %s", gr.name, earliest[g], deadline[g], strings.Join(chain, "; ")), chain, gr.hosts...)
		}
		if !failed {
			return earliest, deadline
		}
		m.cascade()
	}
}

func (m *model) baseWave(g *group) int {
	if g.pin > 0 {
		return g.pin
	}
	if m.c.Pilot.Hosts > 0 && !g.eligible {
		return 2
	}
	return 1
}

func (m *model) baseText(g *group) string {
	if g.pin > 0 {
		return fmt.Sprintf("%s pinned to wave %d", m.label(g.pinHost), g.pin)
	}
	if m.c.Pilot.Hosts > 0 && !g.eligible {
		return fmt.Sprintf("%s is not low-risk, so not in the pilot wave", g.name)
	}
	return g.name + " may start in wave 1"
}

func fmtBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}

// why is " (what holds the group together)", or "" for a lone host.
func (g *group) why() string {
	if len(g.sources) == 0 {
		return ""
	}
	return " (" + strings.Join(g.sources, "; ") + ")"
}
