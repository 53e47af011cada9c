package planner

import (
	"fmt"
	"strings"
)

// rate gives every wave a confidence (how sure the grouping behind it is)
// and a risk (how much could go wrong at its cutover), each with the
// factors that set it, so a consultant sees why before reordering.
//
// Confidence starts high and drops with hosts whose grouping rests on
// inference with weak cohesion or on no observed traffic at all. Risk adds
// points: critical hosts (2), high-criticality hosts (1), dependency
// cycles (1), dependency weight crossing to other waves (1 above 20 %, 2
// above 50 % of the wave's weight), hosts an assessment found not ready
// (2), a cutover that outlasts its window (2), production (1); 0–1 is low,
// 2–3 medium, 4 and more high.
func (m *model) rate(p *Plan, wave []int) {
	nw := len(p.Waves)
	type acc struct {
		hosts, labelled, weak, silent, critical, high, notReady int
		cycles                                                  int
		own, cross                                              int64
		prod                                                    bool
	}
	a := make([]acc, nw+1)
	for gi, gr := range m.groups {
		w := wave[gi]
		if w == 0 {
			continue
		}
		x := &a[w]
		for _, src := range gr.sources {
			if strings.HasPrefix(src, "cycle ") || strings.HasPrefix(src, "groups call each other") {
				x.cycles++
			}
		}
		if gr.prod {
			x.prod = true
		}
		lo := m.gall.off[gi]
		for k, h := range m.gall.out(gi) {
			if wave[h] == w {
				x.own += m.gall.w[int(lo)+k]
			} else if wave[h] > 0 {
				x.cross += m.gall.w[int(lo)+k]
			}
		}
	}
	cohesion := map[int32]float64{}
	si := 0
	for ai, nm := range m.appName {
		if strings.HasPrefix(nm, "suggested application ") {
			cohesion[int32(ai)] = m.suggestions[si].Cohesion
			si++
		}
	}
	for v := 0; v < m.n; v++ {
		w := wave[m.hostGroup[v]]
		if w == 0 {
			continue
		}
		x := &a[w]
		h := &m.e.Hosts[v]
		x.hosts++
		switch {
		case h.Application != "" && !m.r.IgnoreApplications:
			x.labelled++
		case m.app[v] >= 0 && cohesion[m.app[v]] < 0.7:
			x.weak++
		}
		if m.dep.off[v] == m.dep.off[v+1] && m.rdep.off[v] == m.rdep.off[v+1] {
			x.silent++
		}
		switch h.Criticality {
		case "critical":
			x.critical++
		case "high":
			x.high++
		}
		if _, ok := m.c.NotReady[h.ID]; ok {
			x.notReady++
		}
	}
	for i := range p.Waves {
		wv := &p.Waves[i]
		x := a[wv.Number]
		wv.Production = x.prod
		var cf []string
		conf := 2
		if x.labelled > 0 {
			cf = append(cf, fmt.Sprintf("%d of %d hosts grouped by their application label", x.labelled, x.hosts))
		}
		if inferred := x.hosts - x.labelled - x.silent; inferred > 0 {
			cf = append(cf, fmt.Sprintf("%d host(s) grouped from observed traffic", inferred))
		}
		if x.weak > 0 {
			cf = append(cf, fmt.Sprintf("%d host(s) in inferred applications with weak cohesion (< 70 %% of their traffic inside)", x.weak))
			if float64(x.weak) > 0.2*float64(x.hosts) {
				conf--
			}
		}
		if x.silent > 0 {
			cf = append(cf, fmt.Sprintf("%d host(s) with no observed traffic: their dependencies are unknown", x.silent))
			if float64(x.silent) > 0.2*float64(x.hosts) {
				conf--
			}
		}
		wv.Confidence, wv.ConfidenceFactors = []string{"low", "medium", "high"}[max(0, conf)], nonNilS(cf)
		var rf []string
		risk := 0
		if x.critical > 0 {
			risk += 2
			rf = append(rf, fmt.Sprintf("%d critical host(s)", x.critical))
		}
		if x.high > 0 {
			risk++
			rf = append(rf, fmt.Sprintf("%d high-criticality host(s)", x.high))
		}
		if x.cycles > 0 {
			risk++
			rf = append(rf, fmt.Sprintf("%d dependency cycle(s) cut over together", x.cycles))
		}
		if t := x.own + x.cross; t > 0 && x.cross > 0 {
			f := float64(x.cross) / float64(t)
			switch {
			case f > 0.5:
				risk += 2
			case f > 0.2:
				risk++
			}
			rf = append(rf, fmt.Sprintf("%s of its groups' dependency weight crosses to other waves", pct(f)))
		}
		if x.notReady > 0 {
			risk += 2
			rf = append(rf, fmt.Sprintf("%d host(s) not ready for the target", x.notReady))
		}
		if why := m.overWindow[wv.Number]; why != "" {
			risk += 2
			rf = append(rf, why)
		}
		if x.prod {
			risk++
			rf = append(rf, "production")
		}
		switch {
		case risk >= 4:
			wv.Risk = "high"
		case risk >= 2:
			wv.Risk = "medium"
		default:
			wv.Risk = "low"
		}
		wv.RiskFactors = nonNilS(rf)
	}
}

func nonNilS(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// checkRules reports where the finished plan departs from a wave rule and
// why (a rule higher in the order, or a pin, won).
func (m *model) checkRules(p *Plan, wave []int) {
	if on(m.c.WaveRules.SeparateProduction) {
		for i := range p.Waves {
			w := i + 1
			var prod, non []string
			mixed := ""
			for gi, gr := range m.groups {
				if wave[gi] != w || gr.shared {
					continue // shared services follow their own policy
				}
				hasP, hasN := false, false
				for _, h := range gr.hosts {
					switch m.e.Hosts[h].Environment {
					case "production", "dr", "":
						hasP = true
					default:
						hasN = true
					}
				}
				if hasP && hasN && mixed == "" {
					mixed = gr.name
				}
				if gr.prod {
					prod = append(prod, gr.name)
				} else {
					non = append(non, gr.name)
				}
			}
			switch {
			case mixed != "":
				p.Waived = append(p.Waived, fmt.Sprintf("separate_production: wave %d mixes production and non-production: group %s holds both and moves whole", w, mixed))
			case len(prod) > 0 && len(non) > 0:
				p.Waived = append(p.Waived, fmt.Sprintf("separate_production: wave %d mixes production (%s) and non-production (%s): a pin outranks the rule", w, prod[0], non[0]))
			}
		}
	}
	if mn := m.c.WaveRules.WorkloadRange.Min; mn > 0 {
		for _, wv := range p.Waves {
			if wv.Hosts < mn && !wv.Pilot {
				p.Waived = append(p.Waived, fmt.Sprintf("workload_range: wave %d has %d host(s), under the minimum %d: nothing else could join it without breaking a rule above it", wv.Number, wv.Hosts, mn))
			}
		}
	}
}
