package planner

import (
	"fmt"
	"slices"
	"strings"
)

// Suggestion is an application inferred from traffic: hosts without an
// application label that talk mostly to each other (and, when it extends a
// labelled application, the labelled hosts they talk to). Accepting it
// gives its hosts the application.
type Suggestion struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Application is the labelled application the suggestion extends, ""
	// for a new one; Labelled counts that application's hosts in it.
	Application string `json:"application"`
	Labelled    int    `json:"labelled"`
	Environment string `json:"environment"`
	// Hosts are the unlabelled members (the ones accepting would label).
	Hosts []string `json:"hosts"`
	// InternalWeight is the dependency weight (connection counts, noise
	// and shared services removed) between members; ExternalWeight to the
	// rest of the estate; SharedWeight to shared services. Cohesion is
	// internal / (internal + external).
	InternalWeight int64   `json:"internal_weight"`
	ExternalWeight int64   `json:"external_weight"`
	SharedWeight   int64   `json:"shared_weight"`
	Cohesion       float64 `json:"cohesion"`
	// Ports are the ports that bind the members, heaviest first.
	Ports []PortWeight `json:"ports"`
	// Neighbours are the applications it talks to most.
	Neighbours []string `json:"neighbours"`
}

// PortWeight is the weight carried by one port.
type PortWeight struct {
	Port   int   `json:"port"`
	Weight int64 `json:"weight"`
}

// LabelConflict is a labelled host whose traffic says it belongs elsewhere.
type LabelConflict struct {
	HostID string `json:"host_id"`
	Name   string `json:"name"`
	Label  string `json:"label"`
	// Traffic names the application its traffic binds it to.
	Traffic     string `json:"traffic"`
	LabelWeight int64  `json:"label_weight"`
	OtherWeight int64  `json:"other_weight"`
}

// inferResolution scales the modularity resolution γ to the estate:
// γ = resolution × inferResolution × 2m / w̄, with 2m the total weight and
// w̄ the mean edge weight. Plain modularity (γ = 1) merges any two small
// applications joined by one call once the estate is large (its resolution
// limit: the null model term d₁d₂/2m shrinks as the estate grows); with
// this scaling two groups merge only when the weight between them is large
// against their degrees in units of the typical edge, whatever the size of
// the estate or the scale of the counts. The constant was calibrated on
// generated estates (2,000 to 100,000 hosts: adjusted Rand index ≥ 0.99
// against the planted applications; docs/planner.md).
const inferResolution = 0.004

// infer decides which application each host moves with: its label
// (application and environment), or, for unlabelled hosts, the community
// it falls in when the traffic graph (noise and shared services removed)
// is partitioned by Louvain modularity optimisation. Labelled hosts of one
// application are contracted into one vertex first, so a community can
// grow a labelled application but never splits one; a community that
// holds several labelled applications gives each unlabelled member to the
// one it talks to most. Communities are split by environment, like
// labelled applications.
func (m *model) infer() {
	n := m.n
	m.app = make([]int32, n)
	useLabels := !m.r.IgnoreApplications
	unit := make([]int32, n)
	labelKey := make([]string, n)
	units := 0
	keyUnit := map[string]int32{}
	var unitLabel []string // label key of a unit, "" when unlabelled
	for v := 0; v < n; v++ {
		h := &m.e.Hosts[v]
		if m.shared[v] {
			unit[v] = -1
			continue
		}
		if useLabels && h.Application != "" {
			k := h.Application + " (" + orStr(h.Environment, "no environment") + ")"
			labelKey[v] = k
			u, ok := keyUnit[k]
			if !ok {
				u = int32(units)
				keyUnit[k] = u
				units++
				unitLabel = append(unitLabel, k)
			}
			unit[v] = u
			continue
		}
		unit[v] = int32(units)
		units++
		unitLabel = append(unitLabel, "")
	}
	comm := make([]int32, units)
	for i := range comm {
		comm[i] = int32(i)
	}
	if on(m.r.InferApplications) {
		var arcs []arc
		for v := 0; v < n; v++ {
			lo := m.dep.off[v]
			for k, u := range m.dep.out(v) {
				if unit[v] < 0 || unit[u] < 0 || unit[v] == unit[u] {
					continue
				}
				arcs = append(arcs, arc{unit[v], unit[u], m.dep.w[int(lo)+k]})
			}
		}
		g := newUgraph(units, arcs)
		var m2 float64
		for _, w := range g.w {
			m2 += w
		}
		if len(g.w) > 0 {
			mean := m2 / float64(len(g.w))
			comm = louvain(g, m.r.Resolution*inferResolution*m2/mean, 1)
		}
		// A community holding several labelled applications: each
		// unlabelled unit joins the labelled one it talks to most.
		labelsIn := map[int32][]int32{}
		for u := 0; u < units; u++ {
			if unitLabel[u] != "" {
				labelsIn[comm[u]] = append(labelsIn[comm[u]], int32(u))
			}
		}
		orig := slices.Clone(comm)
		for u := 0; u < units; u++ {
			if unitLabel[u] != "" {
				comm[u] = int32(u) // a labelled application is its own
				continue
			}
			ls := labelsIn[orig[u]]
			switch len(ls) {
			case 0:
			case 1:
				comm[u] = ls[0]
			default:
				best, bestW := int32(-1), 0.0
				for e := g.off[u]; e < g.off[u+1]; e++ {
					if x := g.to[e]; slices.Contains(ls, x) && g.w[e] > bestW {
						best, bestW = x, g.w[e]
					}
				}
				if best >= 0 {
					comm[u] = best
				} else {
					comm[u] = int32(units) + orig[u] // the unlabelled rest stays together
				}
			}
		}
	}
	// Applications: one per (community, environment); a singleton without
	// a label is no application.
	type key struct {
		c   int32
		env string
	}
	members := map[key][]int32{}
	var keys []key
	for v := 0; v < n; v++ {
		m.app[v] = -1
		if unit[v] < 0 {
			continue
		}
		k := key{comm[unit[v]], m.e.Hosts[v].Environment}
		if c := k.c; c < int32(units) && unitLabel[c] != "" {
			k.env = "" // joins a labelled application, which is one environment already
		}
		if _, ok := members[k]; !ok {
			keys = append(keys, k)
		}
		members[k] = append(members[k], int32(v))
	}
	for _, k := range keys { // keys are in order of their lowest host
		hs := members[k]
		labelled := ""
		unl := 0
		for _, h := range hs {
			if labelKey[h] != "" {
				labelled = labelKey[h]
			} else {
				unl++
			}
		}
		if labelled == "" && len(hs) < 2 {
			continue
		}
		id := int32(len(m.appName))
		for _, h := range hs {
			m.app[h] = id
		}
		if unl == 0 {
			m.appName = append(m.appName, "application "+labelled)
			continue
		}
		sg := Suggestion{ID: fmt.Sprintf("s-%05d", len(m.suggestions)+1), Environment: m.e.Hosts[hs[0]].Environment}
		for _, h := range hs {
			if labelKey[h] == "" {
				sg.Hosts = append(sg.Hosts, m.e.Hosts[h].ID)
			} else {
				sg.Labelled++
				sg.Application = m.e.Hosts[h].Application
				sg.Environment = m.e.Hosts[h].Environment
			}
		}
		if sg.Application != "" {
			sg.Name = sg.Application
		} else {
			sg.Name = m.suggestName(hs)
		}
		m.suggestions = append(m.suggestions, sg)
		m.appName = append(m.appName, "suggested application "+sg.Name+" ("+orStr(sg.Environment, "no environment")+")")
	}
	m.uniqueSuggestionNames()
	m.evidence()
}

// suggestName names an inferred application by what its members' names
// share: "crm-3-web01", "crm-3-app01" and "crm-3-db01" give "crm-3".
func (m *model) suggestName(hs []int32) string {
	var common []string
	for i, h := range hs {
		parts := strings.FieldsFunc(strings.ToLower(m.label(h)), func(r rune) bool { return r == '-' || r == '_' || r == '.' })
		if i == 0 {
			common = parts
			continue
		}
		j := 0
		for j < len(common) && j < len(parts) && common[j] == parts[j] {
			j++
		}
		common = common[:j]
	}
	// A last part that names one host ("web01") is no application name.
	for len(common) > 0 && len(hs) > 1 && strings.ContainsAny(common[len(common)-1], "0123456789") && len(common) > 1 && strings.Trim(common[len(common)-1], "0123456789") != "" {
		common = common[:len(common)-1]
	}
	if len(common) == 0 {
		return "app-" + m.label(hs[0])
	}
	return strings.Join(common, "-")
}

func (m *model) uniqueSuggestionNames() {
	seen := map[string]int{}
	for i := range m.e.Hosts {
		if a := m.e.Hosts[i].Application; a != "" {
			seen[a+"\x00"+m.e.Hosts[i].Environment] = 1
		}
	}
	for i := range m.suggestions {
		s := &m.suggestions[i]
		if s.Application != "" {
			continue
		}
		k := s.Name + "\x00" + s.Environment
		if c := seen[k]; c > 0 {
			seen[k] = c + 1
			s.Name = fmt.Sprintf("%s-%d", s.Name, c+1)
			k = s.Name + "\x00" + s.Environment
		}
		seen[k] = 1
	}
	// Keep appName in step with the renamed suggestions.
	si := 0
	for a, nm := range m.appName {
		if strings.HasPrefix(nm, "suggested application ") {
			s := m.suggestions[si]
			m.appName[a] = "suggested application " + s.Name + " (" + orStr(s.Environment, "no environment") + ")"
			si++
		}
	}
}

// evidence fills each suggestion's weights, binding ports and neighbours,
// and finds labelled hosts whose traffic binds them to another application.
func (m *model) evidence() {
	na := len(m.appName)
	internal := make([]int64, na)
	external := make([]int64, na)
	sharedW := make([]int64, na)
	type pk struct{ a, port int32 }
	portW := map[pk]int64{}
	type nk struct{ a, b int32 }
	nbW := map[nk]int64{}
	// Per labelled host: weight to its own application vs the heaviest other.
	type hw struct {
		own   int64
		other map[int32]int64
	}
	hostW := map[int32]*hw{}
	add := func(v, u int32, w int64) {
		if m.e.Hosts[v].Application == "" || m.r.IgnoreApplications || m.app[v] < 0 {
			return
		}
		x := hostW[v]
		if x == nil {
			x = &hw{other: map[int32]int64{}}
			hostW[v] = x
		}
		if m.app[u] == m.app[v] {
			x.own += w
		} else if m.app[u] >= 0 {
			x.other[m.app[u]] += w
		}
	}
	for v := 0; v < m.n; v++ {
		lo := m.dep.off[v]
		for k, u := range m.dep.out(v) {
			w := m.dep.w[int(lo)+k]
			av, au := m.app[v], m.app[u]
			switch {
			case m.shared[v] || m.shared[u]:
				if av >= 0 && m.shared[u] {
					sharedW[av] += w
				}
				continue
			case av >= 0 && av == au:
				internal[av] += w
				portW[pk{av, m.depPort[int(lo)+k]}] += w
			default:
				if av >= 0 {
					external[av] += w
					if au >= 0 {
						nbW[nk{av, au}] += w
					}
				}
				if au >= 0 {
					external[au] += w
					if av >= 0 {
						nbW[nk{au, av}] += w
					}
				}
			}
			add(int32(v), u, w)
			add(u, int32(v), w)
		}
	}
	ports := make([][]PortWeight, na)
	for _, k := range sortedPK(portW, func(k pk) (int32, int32) { return k.a, k.port }) {
		ports[k.a] = append(ports[k.a], PortWeight{int(k.port), portW[pk{k.a, k.port}]})
	}
	nbs := make([][]nk, na)
	for k := range nbW {
		nbs[k.a] = append(nbs[k.a], k)
	}
	si := 0
	for a, nm := range m.appName {
		if !strings.HasPrefix(nm, "suggested application ") {
			continue
		}
		s := &m.suggestions[si]
		si++
		s.InternalWeight, s.ExternalWeight, s.SharedWeight = internal[a], external[a], sharedW[a]
		if t := internal[a] + external[a]; t > 0 {
			s.Cohesion = round4(float64(internal[a]) / float64(t))
		}
		ps := ports[a]
		slices.SortStableFunc(ps, func(x, y PortWeight) int {
			if x.Weight != y.Weight {
				if x.Weight > y.Weight {
					return -1
				}
				return 1
			}
			return x.Port - y.Port
		})
		s.Ports = append([]PortWeight{}, ps[:min(3, len(ps))]...)
		nb := nbs[a]
		slices.SortFunc(nb, func(x, y nk) int {
			wx, wy := nbW[x], nbW[y]
			if wx != wy {
				if wx > wy {
					return -1
				}
				return 1
			}
			return int(x.b - y.b)
		})
		s.Neighbours = []string{}
		for _, k := range nb[:min(3, len(nb))] {
			s.Neighbours = append(s.Neighbours, fmt.Sprintf("%s (%d)", appLabel(m.appName[k.b]), nbW[k]))
		}
	}
	for _, v := range sortedInt32Keys(hostW) {
		x := hostW[v]
		var best int32 = -1
		var bw int64
		for a, w := range x.other {
			if w > bw || w == bw && a < best {
				best, bw = a, w
			}
		}
		if best >= 0 && bw > x.own {
			h := &m.e.Hosts[v]
			m.labelConflicts = append(m.labelConflicts, LabelConflict{HostID: h.ID, Name: h.Label(), Label: h.Application,
				Traffic: appLabel(m.appName[best]), LabelWeight: x.own, OtherWeight: bw})
		}
	}
}

// appLabel strips the "application " / "suggested application " prefix.
func appLabel(s string) string {
	return strings.TrimPrefix(strings.TrimPrefix(s, "suggested application "), "application ")
}

func sortedPK[K comparable, V any](mp map[K]V, parts func(K) (int32, int32)) []K {
	keys := make([]K, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y K) int {
		a1, b1 := parts(x)
		a2, b2 := parts(y)
		if a1 != a2 {
			return int(a1 - a2)
		}
		return int(b1 - b2)
	})
	return keys
}

// Inference is what the planner infers from an estate's traffic without
// planning waves: suggested applications, shared services and labelled
// hosts whose traffic disagrees with their label.
type Inference struct {
	Suggestions    []Suggestion    `json:"suggestions"`
	SharedServices []SharedService `json:"shared_services"`
	LabelConflicts []LabelConflict `json:"label_conflicts"`
}

// Infer runs the inference Build runs, alone. Only the rules matter; the
// error is for bad input (Problems).
func Infer(e *Estate, r Rules) (*Inference, error) {
	m, err := newModel(e, r, Constraints{Bandwidth: 1}) // constraints play no part in inference
	if err != nil {
		return nil, err
	}
	return &Inference{Suggestions: nonNilSlice(m.suggestions), SharedServices: nonNilSlice(m.sharedList), LabelConflicts: nonNilSlice(m.labelConflicts)}, nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Evidence computes a suggestion's evidence for a set of hosts chosen by a
// person (after a split): weights inside, to the rest (shared services
// apart), binding ports and neighbours by application.
func Evidence(e *Estate, r Rules, hostIDs []string) (Suggestion, error) {
	m, err := newModel(e, r, Constraints{Bandwidth: 1})
	if err != nil {
		return Suggestion{}, err
	}
	in := make([]bool, m.n)
	var p Problems
	for i, id := range hostIDs {
		v, ok := m.idx[id]
		if !ok {
			p.addf("hosts[%d]: %q is not a host of the estate", i, id)
			continue
		}
		in[v] = true
	}
	if len(p) > 0 {
		return Suggestion{}, p
	}
	s := Suggestion{Hosts: append([]string{}, hostIDs...), Ports: []PortWeight{}, Neighbours: []string{}}
	portW := map[int32]int64{}
	nbW := map[int32]int64{}
	for v := 0; v < m.n; v++ {
		lo := m.dep.off[v]
		for k, u := range m.dep.out(v) {
			w := m.dep.w[int(lo)+k]
			switch {
			case in[v] && m.shared[u]:
				s.SharedWeight += w
			case m.shared[v] || m.shared[u]:
			case in[v] && in[u]:
				s.InternalWeight += w
				portW[m.depPort[int(lo)+k]] += w
			case in[v] || in[u]:
				s.ExternalWeight += w
				o := u
				if in[u] {
					o = int32(v)
				}
				if a := m.app[o]; a >= 0 {
					nbW[a] += w
				}
			}
		}
	}
	if t := s.InternalWeight + s.ExternalWeight; t > 0 {
		s.Cohesion = round4(float64(s.InternalWeight) / float64(t))
	}
	for _, port := range sortedInt32Keys(portW) {
		s.Ports = append(s.Ports, PortWeight{int(port), portW[port]})
	}
	slices.SortStableFunc(s.Ports, func(x, y PortWeight) int {
		if x.Weight != y.Weight {
			if x.Weight > y.Weight {
				return -1
			}
			return 1
		}
		return x.Port - y.Port
	})
	s.Ports = s.Ports[:min(3, len(s.Ports))]
	nbs := sortedInt32Keys(nbW)
	slices.SortStableFunc(nbs, func(x, y int32) int {
		if nbW[x] != nbW[y] {
			if nbW[x] > nbW[y] {
				return -1
			}
			return 1
		}
		return int(x - y)
	})
	for _, a := range nbs[:min(3, len(nbs))] {
		s.Neighbours = append(s.Neighbours, fmt.Sprintf("%s (%d)", appLabel(m.appName[a]), nbW[a]))
	}
	return s, nil
}
