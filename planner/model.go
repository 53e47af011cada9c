package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-migrate/ferry/i18n"
)

// model is the planner's working form of an estate: hosts by index, the
// dependency graph, the move groups and the order constraints between them.
type model struct {
	e     *Estate
	c     Constraints
	r     Rules
	idx   map[string]int32 // host id -> index
	names map[string][]int32
	n     int

	// dep is the host dependency graph: an arc src -> dst for "src depends
	// on dst", weight = observed connection count, port = heaviest port.
	dep     *csr
	depPort []int32
	// rdep is dep reversed (dependants).
	rdep *csr

	cycles []Cycle

	hostGroup []int32 // host -> group
	groups    []*group

	// gdep: group dependency arcs (a depends on b), gstrict: a before b.
	gpred, gsucc [][]orderArc
	gadj         *csr // undirected group affinity (shared services left out)
	gall         *csr // undirected group weight, shared services included

	// shared marks shared services (see shared.go); sharedList their report.
	shared     []bool
	sharedList []SharedService
	// app is the application a host moves with (labelled or inferred), -1
	// for none; suggestions and labelConflicts are the inference report.
	app            []int32
	appName        []string
	suggestions    []Suggestion
	labelConflicts []LabelConflict

	infeasible []Infeasibility
	waived     []string
	waivedArc  map[[2]int32]bool // host calls that order no wave (loops broken with strong_dependencies_together off)
	// Packing records, for true reasons: the wave a group was first ready
	// in, why an earlier wave did not take it, whether the improvement
	// pass moved it (and towards what), whether dev/test-first gave way.
	readyAt       []int
	missWhy       []miss
	improvedTo    []i18n.Msg
	devTestWaived []bool
	waveProd      []int8         // per wave: -1 empty, 0 non-production, 1 production
	firstProd     int            // first wave holding production (render)
	overWindow    map[int]string // waves whose cutover outlasts their window
	capCache      [3]int         // waveCap, cutover cap, hosts per window (+1, 0 = not computed)
	bad           []bool         // group is in no wave: infeasible, or kept on-premises
	onPrem        []bool         // group is a shared service kept on-premises by policy
	badWhy        []string
	keepApart     [][2]int32
	apartOf       map[int32][]int32 // host -> hosts it must not share a wave with
}

// orderArc is an ordering constraint between groups. lag 0: the other group
// may share the wave (a dependency); lag 1: strictly earlier (a before rule).
type orderArc struct {
	g   int32
	lag int
	// why names the hosts behind the arc, e.g. "depends on ora-12 (tcp/1521)".
	host, other int32
	rule        string
}

type group struct {
	id         int
	hosts      []int32
	sources    []string // "application shop (production)", "cycle a ↔ b", "keep-together sap"
	bytes      int64
	pin        int // 0 = none
	pinHost    int32
	eligible   bool // may go in the pilot wave
	deps       int  // hosts outside the group that depend on it
	name       string
	prod       bool   // holds a production, DR or unclassified host
	critical   bool   // holds a critical host
	complex    bool   // at least WaveRules.ComplexHosts hosts
	shared     bool   // a shared service
	inferred   bool   // held together by an inferred application
	droppedPin string // why the group's pin was dropped, if it was
	waiveEarly bool   // the pilot / critical-not-early lower bound gave way to a pin
}

func (m *model) label(h int32) string { return m.e.Hosts[h].Label() }

// resolve turns a host reference (id, name, or application:NAME) into hosts.
func (m *model) resolve(ref string) []int32 {
	if app, ok := strings.CutPrefix(ref, "application:"); ok {
		var out []int32
		for i := range m.e.Hosts {
			if m.e.Hosts[i].Application == app {
				out = append(out, int32(i))
			}
		}
		return out
	}
	if i, ok := m.idx[ref]; ok {
		return []int32{i}
	}
	return m.names[ref]
}

func (m *model) noiseSets() (map[int]bool, map[string]bool) {
	ports := DefaultNoisePorts
	if m.r.NoisePorts != nil {
		ports = m.r.NoisePorts
	}
	procs := DefaultNoiseProcesses
	if m.r.NoiseProcesses != nil {
		procs = m.r.NoiseProcesses
	}
	np := map[int]bool{}
	for _, p := range append(slices.Clone(ports), m.r.ExtraNoisePorts...) {
		np[p] = true
	}
	nproc := map[string]bool{}
	for _, p := range append(slices.Clone(procs), m.r.ExtraNoiseProcesses...) {
		nproc[strings.ToLower(p)] = true
	}
	return np, nproc
}

// newModel validates the inputs and builds graph and groups. Rule
// references to unknown hosts are input errors (Problems), not infeasibility.
func newModel(e *Estate, r Rules, c Constraints) (*model, error) {
	if err := ValidateEstate(e); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	// The planner works on the hosts in id order, not file order, so the
	// same estate in any order of hosts (and, since connections are
	// aggregated and sorted, of connections) gives the same plan.
	perm := make([]int32, len(e.Hosts))
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int { return strings.Compare(e.Hosts[a].ID, e.Hosts[b].ID) })
	sorted := make([]Host, len(e.Hosts))
	for i, j := range perm {
		sorted[i] = e.Hosts[j]
	}
	e = &Estate{Hosts: sorted, Connections: e.Connections}
	m := &model{e: e, r: r.withDefaults(), c: c.withDefaults(), n: len(e.Hosts)}
	m.idx = make(map[string]int32, m.n)
	m.names = make(map[string][]int32, m.n)
	for i := range e.Hosts {
		m.idx[e.Hosts[i].ID] = int32(i)
		if nm := e.Hosts[i].Name; nm != "" {
			m.names[nm] = append(m.names[nm], int32(i))
		}
	}
	var p Problems
	check := func(field, ref string) {
		if len(m.resolve(ref)) == 0 {
			p.addf("%s: %q is not a host id, host name or application:NAME in the estate", field, ref)
		}
	}
	for i, k := range r.KeepTogether {
		for j, h := range k.Hosts {
			check(fmt.Sprintf("rules.keep_together[%d].hosts[%d]", i, j), h)
		}
	}
	for i, k := range r.KeepApart {
		check(fmt.Sprintf("rules.keep_apart[%d][0]", i), k[0])
		check(fmt.Sprintf("rules.keep_apart[%d][1]", i), k[1])
	}
	for i, b := range r.Before {
		check(fmt.Sprintf("rules.before[%d].first", i), b.First)
		check(fmt.Sprintf("rules.before[%d].then", i), b.Then)
	}
	for _, k := range sortedKeys(r.Pins) {
		check(fmt.Sprintf("rules.pins[%s]", k), k)
	}
	for i, h := range r.SharedServices.Hosts {
		check(fmt.Sprintf("rules.shared_services.hosts[%d]", i), h)
	}
	for i, h := range r.SharedServices.Not {
		check(fmt.Sprintf("rules.shared_services.not[%d]", i), h)
	}
	if len(p) > 0 {
		return nil, p
	}
	m.buildGraph()
	m.detectShared()
	m.infer()
	m.buildGroups()
	return m, nil
}

// breakLoops waives the lightest host call of one loop per strongly
// connected set of groups; it reports whether it waived any.
func (m *model) breakLoops(g *csr, gc []int32, gsize map[int32]int, roots []int32) bool {
	done := map[int32]bool{}
	any := false
	for v := 0; v < m.n; v++ {
		if roots[v] != int32(v) || gsize[gc[v]] < 2 || done[gc[v]] {
			continue
		}
		done[gc[v]] = true
		path := cyclePath(g, gc, int32(v))
		var bv, bu int32 = -1, -1
		var bw int64
		for i := 0; i+1 < len(path); i++ {
			from, to := path[i], path[i+1]
			for x := 0; x < m.n; x++ {
				if roots[x] != from && roots[x] != to {
					continue
				}
				lo := m.dep.off[x]
				for k, u := range m.dep.out(x) {
					e := m.effective(int32(x), u)
					if e == 1 && roots[x] == from && roots[u] == to || e == -1 && roots[u] == from && roots[x] == to {
						if w := m.dep.w[int(lo)+k]; bv < 0 || w < bw {
							bv, bu, bw = int32(x), u, w
						}
					}
				}
			}
		}
		if bv < 0 {
			continue
		}
		if m.waivedArc == nil {
			m.waivedArc = map[[2]int32]bool{}
		}
		m.waivedArc[[2]int32{bv, bu}] = true
		m.waived = append(m.waived, fmt.Sprintf("dependencies_first: %s → %s (port %d, %d connections) orders no wave: the lightest call of a loop, and strong_dependencies_together is off",
			m.label(bv), m.label(bu), m.arcPort(bv, bu), bw))
		any = true
	}
	return any
}

// effective says how the dependency arc v -> u orders waves once shared
// services and the rules are taken into account: +1 v after (or with) u,
// -1 reversed (u, a shared service moving last, after its caller v), 0 not
// at all.
func (m *model) effective(v, u int32) int {
	if !on(m.c.WaveRules.DependenciesFirst) || m.waivedArc[[2]int32{v, u}] {
		return 0
	}
	sv, su := m.shared[v], m.shared[u]
	switch {
	case sv && su:
		return 1
	case sv:
		return 0 // a shared service's own calls to applications never order them
	case su:
		switch m.r.SharedServices.Policy {
		case PolicyLast:
			return -1
		case PolicyOnPremises:
			return 0
		}
	}
	return 1
}

// buildGraph aggregates connections per (src, dst, port), drops noise and
// self-loops and keeps one arc per host pair with its heaviest port.
func (m *model) buildGraph() {
	np, nproc := m.noiseSets()
	type rec struct {
		key uint64
		w   int64
	}
	recs := make([]rec, 0, len(m.e.Connections))
	for i := range m.e.Connections {
		c := &m.e.Connections[i]
		if c.Dst == "" || c.Src == c.Dst || np[c.Port] || (c.Process != "" && nproc[strings.ToLower(c.Process)]) {
			continue
		}
		s, d := m.idx[c.Src], m.idx[c.Dst]
		w := max(c.Count, 1)
		recs = append(recs, rec{uint64(s)<<40 | uint64(d)<<16 | uint64(c.Port), w})
	}
	slices.SortFunc(recs, func(a, b rec) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	arcs := make([]arc, 0, len(recs)/2)
	var ports []int32
	var bestW int64
	var portW int64
	for i := 0; i < len(recs); i++ {
		pair := recs[i].key >> 16
		port := int32(recs[i].key & 0xffff)
		portW += recs[i].w
		if i+1 < len(recs) && recs[i+1].key == recs[i].key {
			continue
		}
		// portW is the weight of (pair, port).
		if n := len(arcs); n > 0 && uint64(arcs[n-1].from)<<24|uint64(arcs[n-1].to) == pair {
			arcs[n-1].w += portW
			if portW > bestW {
				bestW, ports[n-1] = portW, port
			}
		} else {
			arcs = append(arcs, arc{int32(pair >> 24), int32(pair & 0xffffff), portW})
			ports = append(ports, port)
			bestW = portW
		}
		portW = 0
	}
	// arcs are already sorted and unique, so buildCSR keeps their order and ports stay aligned.
	m.dep = buildCSR(m.n, arcs)
	m.depPort = ports
	rev := make([]arc, len(arcs))
	for i, a := range arcs {
		rev[i] = arc{a.to, a.from, a.w}
	}
	m.rdep = buildCSR(m.n, rev)
}

// arcPort returns the heaviest port of the dependency arc a -> b.
func (m *model) arcPort(a, b int32) int32 {
	lo, hi := m.dep.off[a], m.dep.off[a+1]
	i, ok := slices.BinarySearch(m.dep.to[lo:hi], b)
	if !ok {
		return 0
	}
	return m.depPort[int(lo)+i]
}

func cycleLabel(m *model, path []int32) string {
	if len(path) == 3 {
		return m.label(path[0]) + " ↔ " + m.label(path[1])
	}
	names := make([]string, 0, len(path))
	for i, v := range path {
		if i == 8 && len(path) > 10 {
			names = append(names, fmt.Sprintf("… (+%d)", len(path)-9))
			names = append(names, m.label(path[len(path)-1]))
			break
		}
		names = append(names, m.label(v))
	}
	return strings.Join(names, " → ")
}

// buildGroups forms move groups: dependency cycles, applications (per
// environment) and keep-together sets, then merges again while the group
// graph has cycles (two applications calling each other must move together).
func (m *model) buildGroups() {
	uf := newUnionFind(m.n)
	why := map[int32][]string{} // a representative host -> sources to attach later
	// Cycles among shared services and their callers are not applications:
	// they are looked for without the shared hosts.
	dep := m.dep
	if slices.Contains(m.shared, true) {
		var arcs []arc
		for v := 0; v < m.n; v++ {
			for _, u := range m.dep.out(v) {
				if !m.shared[v] && !m.shared[u] {
					arcs = append(arcs, arc{int32(v), u, 1})
				}
			}
		}
		dep = buildCSR(m.n, arcs)
	}
	comp, _ := sccs(dep)
	if !on(m.c.WaveRules.StrongDependenciesTogether) {
		for v := range comp {
			comp[v] = int32(v) // cycles are reported but not joined
		}
	}
	first := map[int32]int32{}
	for v := 0; v < m.n; v++ {
		c := comp[v]
		if f, ok := first[c]; ok {
			uf.union(f, int32(v))
			continue
		}
		first[c] = int32(v)
	}
	// Report each host-level cycle once, from its lowest-index host.
	size := map[int32]int{}
	for v := 0; v < m.n; v++ {
		size[comp[v]]++
	}
	realComp, _ := sccs(dep)
	if !on(m.c.WaveRules.StrongDependenciesTogether) {
		comp = realComp
		first = map[int32]int32{}
		for v := 0; v < m.n; v++ {
			if _, ok := first[comp[v]]; !ok {
				first[comp[v]] = int32(v)
			}
		}
		size = map[int32]int{}
		for v := 0; v < m.n; v++ {
			size[comp[v]]++
		}
	}
	for v := 0; v < m.n; v++ {
		if f := first[comp[v]]; f == int32(v) && size[comp[v]] > 1 {
			path := cyclePath(dep, comp, int32(v))
			lbl := cycleLabel(m, path)
			cy := Cycle{Chain: lbl}
			for _, h := range path[:len(path)-1] {
				cy.Hosts = append(cy.Hosts, m.e.Hosts[h].ID)
			}
			cy.Size = size[comp[v]]
			m.cycles = append(m.cycles, cy)
			if on(m.c.WaveRules.StrongDependenciesTogether) {
				why[int32(v)] = append(why[int32(v)], "cycle "+lbl)
			}
		}
	}
	if on(m.c.WaveRules.ApplicationsWhole) {
		first := map[int32]int32{}
		for i := 0; i < m.n; i++ {
			a := m.app[i]
			if a < 0 {
				continue
			}
			if f, ok := first[a]; ok {
				uf.union(f, int32(i))
			} else {
				first[a] = int32(i)
				why[int32(i)] = append(why[int32(i)], m.appName[a])
			}
		}
	}
	for _, k := range m.r.KeepTogether {
		var f int32 = -1
		for _, ref := range k.Hosts {
			for _, h := range m.resolve(ref) {
				if f < 0 {
					f = h
					why[h] = append(why[h], "keep-together "+orStr(k.Name, strings.Join(k.Hosts, "+")))
				} else {
					uf.union(f, h)
				}
			}
		}
	}
	// Merge until the group dependency graph is acyclic.
	for {
		roots := make([]int32, m.n)
		for v := range roots {
			roots[v] = uf.find(int32(v))
		}
		var arcs []arc
		for v := 0; v < m.n; v++ {
			for _, u := range m.dep.out(v) {
				if roots[v] == roots[u] {
					continue
				}
				switch m.effective(int32(v), u) {
				case 1:
					arcs = append(arcs, arc{roots[v], roots[u], 1})
				case -1:
					arcs = append(arcs, arc{roots[u], roots[v], 1})
				}
			}
		}
		g := buildCSR(m.n, arcs)
		gc, _ := sccs(g)
		gsize := map[int32]int{}
		gfirst := map[int32]int32{}
		for v := 0; v < m.n; v++ {
			if roots[v] == int32(v) {
				gsize[gc[v]]++
				if _, ok := gfirst[gc[v]]; !ok {
					gfirst[gc[v]] = int32(v)
				}
			}
		}
		merged := false
		var byRoot map[int32][]int32
		if !on(m.c.WaveRules.StrongDependenciesTogether) {
			// Two-way dependencies do not have to share a wave: each loop
			// is broken at its lightest call, which then orders nothing
			// (dependencies_first cannot hold both ways), and the plan says so.
			if m.breakLoops(g, gc, gsize, roots) {
				continue
			}
			break
		}
		for v := 0; v < m.n; v++ {
			if roots[v] != int32(v) || gsize[gc[v]] < 2 {
				continue
			}
			f := gfirst[gc[v]]
			if f == int32(v) {
				// Name the loop by one host per group, e.g. "app01 → db07 → app01".
				if byRoot == nil {
					byRoot = map[int32][]int32{}
					for x := 0; x < m.n; x++ {
						byRoot[roots[x]] = append(byRoot[roots[x]], int32(x))
					}
				}
				path := cyclePath(g, gc, int32(v))
				lbl, hosts := m.groupCycleLabel(path, roots, byRoot)
				m.cycles = append(m.cycles, Cycle{Chain: lbl, Size: gsize[gc[v]], BetweenGroups: true, Hosts: hostIDs(m, hosts)})
				why[f] = append(why[f], "groups call each other: "+lbl)
				continue
			}
			uf.union(f, int32(v))
			merged = true
		}
		if !merged {
			break
		}
	}
	// Number groups by their lowest host index.
	m.hostGroup = make([]int32, m.n)
	gid := map[int32]int32{}
	for v := 0; v < m.n; v++ {
		r := uf.find(int32(v))
		id, ok := gid[r]
		if !ok {
			id = int32(len(m.groups))
			gid[r] = id
			m.groups = append(m.groups, &group{id: int(id)})
		}
		m.hostGroup[v] = id
		g := m.groups[id]
		g.hosts = append(g.hosts, int32(v))
		g.bytes += m.e.Hosts[v].UsedBytes()
	}
	for _, h := range sortedInt32Keys(why) {
		g := m.groups[m.hostGroup[h]]
		g.sources = append(g.sources, why[h]...)
	}
	for _, g := range m.groups {
		switch {
		case len(g.sources) > 0:
			g.name = g.sources[0]
			for _, pre := range []string{"application ", "suggested application ", "keep-together "} {
				g.name = strings.TrimPrefix(g.name, pre)
			}
		default:
			g.name = m.label(g.hosts[0])
		}
		for _, h := range g.hosts {
			hh := &m.e.Hosts[h]
			switch hh.Environment {
			case "production", "dr", "":
				g.prod = true
			}
			if hh.Criticality == "critical" {
				g.critical = true
			}
			if m.shared[h] {
				g.shared = true
			}
			if a := m.app[h]; a >= 0 && strings.HasPrefix(m.appName[a], "suggested ") {
				g.inferred = true
			}
		}
		g.complex = len(g.hosts) >= m.c.WaveRules.ComplexHosts
	}
}

func hostIDs(m *model, hs []int32) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = m.e.Hosts[h].ID
	}
	return out
}

func sortedInt32Keys[V any](mp map[int32]V) []int32 {
	keys := make([]int32, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// groupCycleLabel names a loop between groups (given by their root hosts)
// by the host calls that close it: "a-app01 → b-db01; b-app01 → a-app01".
func (m *model) groupCycleLabel(path []int32, roots []int32, byRoot map[int32][]int32) (string, []int32) {
	var steps []string
	var hosts []int32
	for i := 0; i+1 < len(path); i++ {
		from, to := path[i], path[i+1]
		found := false
		for _, v := range byRoot[from] {
			if found {
				break
			}
			for _, u := range m.dep.out(int(v)) {
				if roots[u] == to && m.effective(int32(v), u) == 1 {
					steps = append(steps, fmt.Sprintf("%s → %s (port %d)", m.label(int32(v)), m.label(u), m.arcPort(int32(v), u)))
					hosts = append(hosts, int32(v), u)
					found = true
					break
				}
			}
		}
	}
	return strings.Join(steps, "; "), hosts
}
