package planner

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/i18n"
)

const noDeadline = math.MaxInt32

// prepare derives the group-level graph and every rule, and marks what can
// never be placed, with the chain of facts that makes it so.
func (m *model) prepare() {
	ng := len(m.groups)
	m.bad = make([]bool, ng)
	m.badWhy = make([]string, ng)
	m.onPrem = make([]bool, ng)
	if m.r.SharedServices.Policy == PolicyOnPremises {
		// Kept on-premises: in no wave, and not a failure.
		for _, g := range m.groups {
			if g.shared && g.pin == 0 {
				m.onPrem[g.id], m.bad[g.id] = true, true
				m.badWhy[g.id] = "shared service kept on-premises (rules.shared_services.policy on_premises)"
			}
		}
	}
	m.gpred = make([][]orderArc, ng)
	m.gsucc = make([][]orderArc, ng)

	// Group dependency arcs, one per group pair, represented by its
	// heaviest host arc, after shared-service policy and the
	// dependencies-first rule (see effective). Affinity, which pulls groups
	// into the same wave, leaves shared services out: everyone calls them,
	// so they would pull everything everywhere.
	type garc struct {
		a, b int32 // group a depends on group b
		w    int64
		v, u int32 // host v of a depends on host u of b (for the reason)
	}
	var ga []garc
	var aff, all []arc
	for v := 0; v < m.n; v++ {
		lo := m.dep.off[v]
		for k, u := range m.dep.out(v) {
			a, b := m.hostGroup[v], m.hostGroup[u]
			if a == b {
				continue
			}
			w := m.dep.w[int(lo)+k]
			all = append(all, arc{a, b, w}, arc{b, a, w})
			if !m.shared[v] && !m.shared[u] {
				aff = append(aff, arc{a, b, w}, arc{b, a, w})
			}
			switch m.effective(int32(v), u) {
			case 1:
				ga = append(ga, garc{a, b, w, int32(v), u})
			case -1:
				ga = append(ga, garc{b, a, w, u, int32(v)})
			}
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
	m.gall = buildCSR(ng, all)

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
		g.eligible = g.deps <= *m.c.Pilot.MaxDependants && !g.shared
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
					m.conflict(g, "keep-apart", fmt.Sprintf("rule keeps %s and %s apart, but they must move together (%s)", m.label(a), m.label(b), strings.Join(g.sources, "; ")),
						[]string{"keep apart " + m.label(a) + " / " + m.label(b), m.label(a) + " and " + m.label(b) + ": " + strings.Join(g.sources, "; ")},
						"the keep-apart rule is not applied to them; they move together", a, b)
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
		if g.droppedPin != "" {
			continue
		}
		if g.pin == 0 {
			g.pin, g.pinHost = pinOf[h], h
			continue
		}
		if g.pin != pinOf[h] {
			msg := fmt.Sprintf("%s is pinned to wave %d and %s to wave %d, but they move together (%s)",
				m.label(g.pinHost), g.pin, m.label(h), pinOf[h], strings.Join(g.sources, "; "))
			m.conflict(g, "pin-conflict", msg,
				[]string{fmt.Sprintf("%s pinned to wave %d", m.label(g.pinHost), g.pin), strings.Join(g.sources, "; "), fmt.Sprintf("%s pinned to wave %d", m.label(h), pinOf[h])},
				"both pins are ignored; the group is planned as if unpinned", g.pinHost, h)
			g.pin, g.droppedPin = 0, msg
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
					m.conflict(g, "rule-conflict", fmt.Sprintf("%s, but %s and %s must move together (%s)", rule, m.label(x), m.label(y), strings.Join(g.sources, "; ")),
						[]string{rule, m.label(x) + " and " + m.label(y) + ": " + strings.Join(g.sources, "; ")},
						"the rule is not applied to them; they move together", x, y)
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
		} else if cap := m.waveCap(); cap > 0 && len(g.hosts) > cap {
			m.fail(g, "too-big", fmt.Sprintf("group %s has %d hosts, more than a wave can cut over (%s)%s", g.name, len(g.hosts), m.capText(), g.why()),
				[]string{"group " + g.name + g.why(), fmt.Sprintf("%d hosts > %s", len(g.hosts), m.capText())}, g.hosts...)
		} else if g.pin == 1 && m.c.Pilot.Hosts > 0 && len(g.hosts) > m.c.Pilot.Hosts {
			msg := fmt.Sprintf("group %s is pinned to the pilot wave but has %d hosts, more than pilot.hosts %d", g.name, len(g.hosts), m.c.Pilot.Hosts)
			m.conflict(g, "too-big", msg, []string{fmt.Sprintf("%s pinned to wave 1", m.label(g.pinHost)), fmt.Sprintf("%d hosts > pilot.hosts %d", len(g.hosts), m.c.Pilot.Hosts)},
				"the pin is ignored; the group is planned as if unpinned", g.hosts...)
			g.pin, g.droppedPin = 0, msg
		}
	}

	// Order cycles: only possible through before rules, since dependency
	// cycles were merged into groups. Each is broken by ignoring the before
	// rules on it, and reported.
	for round := 0; round < 1000; round++ {
		var oarcs []arc
		for g := range m.groups {
			if m.bad[g] {
				continue
			}
			for _, p := range m.gpred[g] {
				if !m.bad[p.g] {
					oarcs = append(oarcs, arc{p.g, int32(g), 1})
				}
			}
		}
		og := buildCSR(ng, oarcs)
		oc, _ := sccs(og)
		csize := map[int32]int{}
		for g := range m.groups {
			csize[oc[g]]++
		}
		found := false
		for g := range m.groups {
			if csize[oc[g]] < 2 || m.bad[g] {
				continue
			}
			found = true
			path := cyclePath(og, oc, int32(g))
			var chain, rules []string
			var hosts []int32
			for _, x := range path[:len(path)-1] {
				hosts = append(hosts, m.groups[x].hosts...)
			}
			dropped := false
			for i := 0; i+1 < len(path); i++ {
				chain = append(chain, m.arcText(path[i], path[i+1]))
				if m.dropStrict(path[i], path[i+1]) {
					dropped = true
					rules = append(rules, chain[len(chain)-1])
				}
			}
			gr := m.groups[g]
			if !dropped {
				m.fail(gr, "order-cycle", "dependencies form a loop: "+strings.Join(chain, "; "), chain, gr.hosts...)
			} else {
				m.conflict(gr, "order-cycle", "before rules and dependencies form a loop: "+strings.Join(chain, "; "), chain,
					"ignored "+strings.Join(rules, "; ")+"; the rest of the loop holds", hosts...)
			}
			break
		}
		if !found {
			break
		}
	}
}

// dropStrict removes the before-rule arc that makes group b wait for a
// (a strictly earlier); it reports whether there was one.
func (m *model) dropStrict(a, b int32) bool {
	i := slices.IndexFunc(m.gsucc[a], func(x orderArc) bool { return x.g == b && x.lag > 0 })
	if i < 0 {
		return false
	}
	m.gsucc[a] = slices.Delete(m.gsucc[a], i, i+1)
	j := slices.IndexFunc(m.gpred[b], func(x orderArc) bool { return x.g == a && x.lag > 0 })
	if j >= 0 {
		m.gpred[b] = slices.Delete(m.gpred[b], j, j+1)
	}
	return true
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

// fail marks a group that no wave can take (too big for any wave): it is
// left out and reported; groups that depend on it are still planned.
func (m *model) fail(g *group, kind, msg string, chain []string, hosts ...int32) {
	m.bad[g.id] = true
	m.badWhy[g.id] = msg
	inf := Infeasibility{Kind: kind, Group: g.name, Message: msg, Chain: chain, Resolution: "not placed; the rest of the estate is planned without it"}
	for _, h := range hosts {
		inf.Hosts = append(inf.Hosts, m.e.Hosts[h].ID)
	}
	m.infeasible = append(m.infeasible, inf)
}

// conflict reports rules that cannot all hold and what the planner did
// instead (resolution); the group is still planned.
func (m *model) conflict(g *group, kind, msg string, chain []string, resolution string, hosts ...int32) {
	inf := Infeasibility{Kind: kind, Group: g.name, Message: msg, Chain: chain, Resolution: resolution}
	for _, h := range hosts {
		inf.Hosts = append(inf.Hosts, m.e.Hosts[h].ID)
	}
	m.infeasible = append(m.infeasible, inf)
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
			low := m.groups[x]
			chain = append(chain, m.baseText(low))
			slices.Reverse(back)
			chain = append(chain, back...)
			x = g
			for dsucc[x] >= 0 {
				chain = append(chain, m.arcText(x, dsucc[x]))
				x = dsucc[x]
			}
			high := m.groups[x]
			if high.pin > 0 {
				chain = append(chain, fmt.Sprintf("%s pinned to wave %d", m.label(high.pinHost), high.pin))
			}
			gr := m.groups[g]
			msg := fmt.Sprintf("group %s would need a wave ≥ %d and ≤ %d: %s", gr.name, earliest[g], deadline[g], strings.Join(chain, "; "))
			// Explicit pins outrank the wave rules: a soft lower bound
			// (pilot, critical not early) gives way first, then the pin
			// that sets the deadline.
			var res string
			hosts := slices.Clone(gr.hosts)
			switch {
			case low.pin == 0 && !low.waiveEarly && m.softBase(low) > 1:
				low.waiveEarly = true
				res = fmt.Sprintf("%s is placed early anyway (the pin outranks the wave rule)", low.name)
			case high.pin > 0:
				res = fmt.Sprintf("the pin of %s to wave %d is ignored", m.label(high.pinHost), high.pin)
				hosts = append(hosts, high.hosts...)
				high.pin, high.droppedPin = 0, msg
			case low.pin > 0:
				res = fmt.Sprintf("the pin of %s to wave %d is ignored", m.label(low.pinHost), low.pin)
				hosts = append(hosts, low.hosts...)
				low.pin, low.droppedPin = 0, msg
			default:
				m.fail(gr, "pin-order", msg, chain, gr.hosts...)
				continue
			}
			m.conflict(gr, "pin-order", msg, chain, res, hosts...)
			break // recompute the bounds with the rule relaxed
		}
		if !failed || round > 10000 {
			return earliest, deadline
		}
	}
}

func (m *model) baseWave(g *group) int {
	if g.pin > 0 {
		return g.pin
	}
	if g.waiveEarly {
		return 1
	}
	return m.softBase(g)
}

// softBase is the earliest wave the pilot and critical-not-early rules allow.
func (m *model) softBase(g *group) int {
	lb := 1
	if m.c.Pilot.Hosts > 0 && !g.eligible {
		lb = 2
	}
	if m.lateRule(g) {
		lb = max(lb, m.c.WaveRules.EarlyWaves+1)
	}
	return lb
}

// lateRule says the critical-not-early rule holds this group back.
func (m *model) lateRule(g *group) bool {
	return on(m.c.WaveRules.CriticalNotEarly) && !g.shared && (g.critical || g.complex)
}

func (m *model) baseText(g *group) string { return m.baseMsg(g).String() }

// baseMsg says what sets a group's earliest wave.
func (m *model) baseMsg(g *group) i18n.Msg {
	if g.pin > 0 {
		return i18n.M("plan.base.pinned", "host", m.label(g.pinHost), "wave", g.pin)
	}
	if !g.waiveEarly && m.lateRule(g) && m.c.WaveRules.EarlyWaves > 0 {
		return i18n.M("plan.base.not_early", "group", g.name, "why", m.lateWhy(g), "n", m.c.WaveRules.EarlyWaves)
	}
	if !g.waiveEarly && m.c.Pilot.Hosts > 0 && !g.eligible {
		return i18n.M("plan.base.not_pilot", "group", g.name)
	}
	return i18n.M("plan.base.wave1", "group", g.name)
}

func (m *model) lateWhy(g *group) i18n.Msg {
	switch {
	case g.critical && g.complex:
		return i18n.M("plan.late.critical_complex", "n", len(g.hosts))
	case g.critical:
		return i18n.M("plan.late.critical")
	}
	return i18n.M("plan.late.complex", "n", len(g.hosts))
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

// cutoverCap is how many hosts one wave can cut over inside one cutover
// window: hosts per window per stream × parallel cutovers (0 = no cap).
// Without cutover_hosts_per_window it is derived from the shortest cutover
// window and the per-host cutover overhead.
func (m *model) cutoverCap() (cap, perWindow int) {
	if m.capCache[0] > 0 {
		return m.capCache[1], m.capCache[2]
	}
	cap, perWindow = m.cutoverCapUncached()
	m.capCache = [3]int{1, cap, perWindow}
	return cap, perWindow
}

func (m *model) cutoverCapUncached() (cap, perWindow int) {
	per := m.c.CutoverHostsPerWindow
	if per == 0 {
		shortest := 0
		if cut, _ := m.c.cutoverSchedule(); cut != nil {
			shortest = int(shortestOpening(cut).Minutes())
		}
		over := int(time.Duration(m.c.CutoverOverhead).Minutes())
		if shortest == 0 || over <= 0 {
			return 0, 0
		}
		per = max(1, shortest/over)
	}
	return per * m.c.ParallelMigrations, per
}

// waveCap is the host cap of an ordinary wave: the lowest of
// max_hosts_per_wave, the workload range maximum and the cutover capacity.
func (m *model) waveCap() int {
	cap := m.c.MaxHostsPerWave
	for _, c := range []int{m.c.WaveRules.WorkloadRange.Max, first(m.cutoverCap())} {
		if c > 0 && (cap == 0 || c < cap) {
			cap = c
		}
	}
	return cap
}

func first(a, _ int) int { return a }

// capText names the binding host cap of a wave.
func (m *model) capText() string {
	cap := m.waveCap()
	cc, per := m.cutoverCap()
	switch {
	case cap == 0:
		return "no host cap"
	case cap == m.c.MaxHostsPerWave:
		return fmt.Sprintf("max_hosts_per_wave %d", cap)
	case cap == m.c.WaveRules.WorkloadRange.Max:
		return fmt.Sprintf("workload range maximum %d", cap)
	case cap == cc:
		return fmt.Sprintf("cutover capacity %d (%d hosts per cutover window × %d parallel cutovers)", cc, per, m.c.ParallelMigrations)
	}
	return fmt.Sprintf("%d hosts", cap)
}
