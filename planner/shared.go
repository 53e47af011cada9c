package planner

import (
	"fmt"
	"slices"
)

// SharedService is a host that a large part of the estate calls (NFS, an
// SMTP relay, a proxy, a shared database). It is kept out of application
// grouping and out of the affinity that fills waves, and placed by the
// policy named here.
type SharedService struct {
	HostID string `json:"host_id"`
	Name   string `json:"name"`
	// Callers is how many hosts call it (noise removed); Share that as a
	// fraction of the estate's hosts.
	Callers int     `json:"callers"`
	Share   float64 `json:"share"`
	// Port is the port most callers use, PortCallers how many use it.
	Port        int `json:"port"`
	PortCallers int `json:"port_callers"`
	// Why says which rule made it shared.
	Why string `json:"why"`
	// Policy is early, last or on_premises; Wave where it landed (0 = not
	// migrated or not placed).
	Policy string `json:"policy"`
	Wave   int    `json:"wave"`
}

// detectShared marks shared services: named in rules.shared_services.hosts,
// or (when detection is on) called by at least caller_share of the hosts or
// by port_callers hosts on one port, and never by fewer than min_callers.
// A host labelled with an application counts only callers from outside
// that application, so a big application's own database is not shared.
func (m *model) detectShared() {
	m.shared = make([]bool, m.n)
	ss := m.r.SharedServices
	not := map[int32]bool{}
	for _, ref := range ss.Not {
		for _, h := range m.resolve(ref) {
			not[h] = true
		}
	}
	forced := map[int32]bool{}
	for _, ref := range ss.Hosts {
		for _, h := range m.resolve(ref) {
			if !not[h] {
				forced[h] = true
			}
		}
	}
	portCount := map[int32]int{}
	for v := 0; v < m.n; v++ {
		callers := m.rdep.out(v)
		if !forced[int32(v)] && (!on(ss.Detect) || not[int32(v)] || len(callers) < ss.MinCallers) {
			continue
		}
		app := m.e.Hosts[v].Application
		n := 0
		clear(portCount)
		var bestPort int32
		for _, u := range callers {
			if app != "" && !m.r.IgnoreApplications && m.e.Hosts[u].Application == app {
				continue
			}
			n++
			p := m.arcPort(u, int32(v))
			portCount[p]++
			if c := portCount[p]; c > portCount[bestPort] || c == portCount[bestPort] && p < bestPort {
				bestPort = p
			}
		}
		share := float64(n) / float64(max(1, m.n))
		var why string
		switch {
		case forced[int32(v)]:
			why = "named in rules.shared_services.hosts"
		case n < ss.MinCallers:
			continue
		case share >= ss.CallerShare:
			why = fmt.Sprintf("called by %d hosts, %s of the estate (caller_share %s)", n, pct(share), pct(ss.CallerShare))
		case portCount[bestPort] >= ss.PortCallers:
			why = fmt.Sprintf("called by %d hosts on port %d (port_callers %d)", portCount[bestPort], bestPort, ss.PortCallers)
		default:
			continue
		}
		m.shared[v] = true
		m.sharedList = append(m.sharedList, SharedService{HostID: m.e.Hosts[v].ID, Name: m.label(int32(v)), Callers: n,
			Share: round4(share), Port: int(bestPort), PortCallers: portCount[bestPort], Why: why, Policy: ss.Policy})
	}
}

// sharedOf returns the shared services host v calls, heaviest first.
func (m *model) sharedOf(v int32) []int32 {
	var out []int32
	for _, u := range m.dep.out(int(v)) {
		if m.shared[u] {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// pct formats a fraction as a percentage, once, for every message.
func pct(f float64) string {
	switch {
	case f == 0:
		return "0 %"
	case f < 0.001:
		return "< 0.1 %"
	case f < 0.1:
		return fmt.Sprintf("%.1f %%", f*100)
	}
	return fmt.Sprintf("%.0f %%", f*100)
}

func round4(x float64) float64 { return float64(int64(x*10000+0.5)) / 10000 }
