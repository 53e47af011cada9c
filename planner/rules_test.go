package planner_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/planner"
)

// sharedEstate: one NFS filer called on port 2049 by the app tier of ten
// three-host applications (web -> app -> db), half production, half test.
func sharedEstate() *planner.Estate {
	e := &planner.Estate{Hosts: []planner.Host{host("nfs01", "", "production", "high", 5)}}
	for i := 0; i < 10; i++ {
		env := "production"
		if i%2 == 1 {
			env = "test"
		}
		p := fmt.Sprintf("a%02d", i)
		for _, tier := range []string{"web", "app", "db"} {
			e.Hosts = append(e.Hosts, host(p+"-"+tier, "", env, "medium", 1))
		}
		e.Connections = append(e.Connections, conn(p+"-web", p+"-app", 8080), conn(p+"-app", p+"-db", 5432))
		for k := 0; k < 3; k++ {
			e.Connections = append(e.Connections, conn(p+"-"+[]string{"web", "app", "db"}[k], "nfs01", 2049))
		}
	}
	return e
}

func sharedRules(policy string) planner.Rules {
	return planner.Rules{SharedServices: planner.SharedServiceRules{Policy: policy, MinCallers: 5, PortCallers: 20}}
}

func TestSharedServicePolicies(t *testing.T) {
	e := sharedEstate()
	c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: 7}
	for _, policy := range []string{planner.PolicyEarly, planner.PolicyLast, planner.PolicyOnPremises} {
		t.Run(policy, func(t *testing.T) {
			r := sharedRules(policy)
			p := build(t, e, r, c)
			checkInvariants(t, e, r, c, p)
			if len(p.SharedServices) != 1 || p.SharedServices[0].HostID != "nfs01" || p.SharedServices[0].Callers != 30 || p.SharedServices[0].Port != 2049 {
				t.Fatalf("shared services %+v, want nfs01 with 30 callers on 2049", p.SharedServices)
			}
			w := waveOf(p)
			// Kept out of grouping: the applications are found without it.
			if len(p.Suggestions) != 10 {
				t.Errorf("%d suggestions, want the 10 applications (the filer must not glue them)", len(p.Suggestions))
			}
			last := 0
			for h, x := range w {
				if h != "nfs01" {
					last = max(last, x)
				}
			}
			reason := reasonOf(p, "nfs01")
			switch policy {
			case planner.PolicyEarly:
				for h, x := range w {
					if x < w["nfs01"] {
						t.Errorf("%s in wave %d before the filer (wave %d) it depends on", h, x, w["nfs01"])
					}
				}
				if !strings.Contains(reason, "moves early") {
					t.Errorf("filer reason %q", reason)
				}
			case planner.PolicyLast:
				if w["nfs01"] < last {
					t.Errorf("filer in wave %d, callers up to wave %d", w["nfs01"], last)
				}
				if !strings.Contains(reason, "moves last") || !strings.Contains(reasonOf(p, "a00-app"), "latency warning: calls nfs01 (port 2049)") {
					t.Errorf("reasons: filer %q, caller %q", reason, reasonOf(p, "a00-app"))
				}
			case planner.PolicyOnPremises:
				if _, placed := w["nfs01"]; placed || len(p.Unplaced) != 0 || p.Metrics.KeptOnPremises != 1 || p.SharedServices[0].Wave != 0 {
					t.Errorf("on-premises filer: placed %v, unplaced %v, kept %d", placed, p.Unplaced, p.Metrics.KeptOnPremises)
				}
				if !strings.Contains(reasonOf(p, "a00-web"), "kept on-premises") {
					t.Errorf("caller reason %q", reasonOf(p, "a00-web"))
				}
			}
		})
	}
}

// A pin that contradicts the order on a shared host leaves everyone else
// planned and names the conflict (it once left every caller unplaced).
func TestConflictingPinOnSharedHostPlansTheRest(t *testing.T) {
	e := sharedEstate()
	e.Hosts = append(e.Hosts, host("store01", "", "production", "high", 1))
	e.Connections = append(e.Connections, conn("nfs01", "store01", 3260))
	e.Connections = append(e.Connections, conn("store01", "nfs01", 111)) // the two shared hosts depend on each other
	r := sharedRules(planner.PolicyEarly)
	r.SharedServices.Hosts = []string{"store01"}
	r.Pins = map[string]int{"nfs01": 1, "store01": 3}
	c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: 7}
	p := build(t, e, r, c)
	checkInvariants(t, e, r, c, p)
	if len(p.Unplaced) != 0 || p.Metrics.Placed != len(e.Hosts) {
		t.Fatalf("unplaced %v: one conflict must not leave the rest out", p.Unplaced)
	}
	if len(p.Infeasible) == 0 || p.Infeasible[0].Resolution == "" || !strings.Contains(p.Infeasible[0].Message, "nfs01") {
		t.Fatalf("conflict not named: %+v", p.Infeasible)
	}
}

func TestDevTestFirstAndSeparateProduction(t *testing.T) {
	e := sharedEstate()
	for i := range e.Hosts[1:] {
		h := &e.Hosts[1+i]
		h.Application = h.ID[:3] // labelled: the filer below must not glue them
	}
	c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: 7}
	r := sharedRules(planner.PolicyEarly)
	r.SharedServices.Not = []string{"nfs01"} // an ordinary dependency here: test apps then depend on production
	r.SharedServices.Detect = no
	p := build(t, e, r, c)
	checkInvariants(t, e, r, c, p)
	env := map[string]string{}
	for _, h := range e.Hosts {
		env[h.ID] = h.Environment
	}
	for _, wv := range p.Waves {
		kinds := map[bool]bool{}
		for _, m := range wv.Members {
			kinds[env[m.HostID] == "production"] = true
		}
		if len(kinds) > 1 {
			t.Errorf("wave %d mixes production and test", wv.Number)
		}
	}
	// The test apps depend on the production filer: dependencies first
	// outranks dev/test first for them, and the plan says so.
	if len(p.Waived) == 0 || !strings.Contains(strings.Join(p.Waived, "\n"), "dev_test_first") {
		t.Errorf("waived %v, want the dev/test-first waivers named", p.Waived)
	}
	// Without the filer, every test wave comes before every production one.
	e2 := &planner.Estate{Hosts: e.Hosts[1:]}
	for _, cn := range e.Connections {
		if cn.Dst != "nfs01" {
			e2.Connections = append(e2.Connections, cn)
		}
	}
	p = build(t, e2, planner.Rules{}, c)
	lastTest, firstProd := 0, 1<<30
	for _, wv := range p.Waves {
		for _, m := range wv.Members {
			if env[m.HostID] == "production" {
				firstProd = min(firstProd, wv.Number)
			} else {
				lastTest = max(lastTest, wv.Number)
			}
		}
	}
	if lastTest >= firstProd {
		t.Errorf("test up to wave %d, production from wave %d", lastTest, firstProd)
	}
	if r := reasonOf(p, "a00-web"); !strings.Contains(r, "dev_test_first") && !strings.Contains(r, "was full") {
		t.Errorf("production reason %q names neither the rule nor capacity", r)
	}
	// Off, the two may share waves.
	off := false
	c.WaveRules = planner.WaveRules{DevTestFirst: &off, SeparateProduction: &off}
	p = build(t, e2, planner.Rules{}, c)
	mixed := false
	for _, wv := range p.Waves {
		kinds := map[bool]bool{}
		for _, m := range wv.Members {
			kinds[env[m.HostID] == "production"] = true
		}
		mixed = mixed || len(kinds) > 1
	}
	if !mixed {
		t.Errorf("with both rules off no wave mixes environments (cap 7, apps of 3)")
	}
}

func TestCriticalNotEarlyCutoverCapacityAndPilotZero(t *testing.T) {
	e := &planner.Estate{Hosts: []planner.Host{
		host("crit", "", "test", "critical", 1), host("t1", "", "test", "low", 1), host("t2", "", "test", "low", 1),
		host("t3", "", "test", "low", 1), host("t4", "", "test", "low", 1), host("dep", "", "test", "low", 1),
	}, Connections: []planner.Connection{conn("dep", "t4", 80)}}
	zero := 0
	c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, CutoverHostsPerWindow: 1, ParallelMigrations: 2,
		CutoverWindows: []string{"Sat 22:00-04:00"}, Pilot: planner.Pilot{Hosts: 2, MaxDependants: &zero}}
	p := build(t, e, plain(planner.Rules{}), c)
	checkInvariants(t, e, plain(planner.Rules{}), c, p)
	w := waveOf(p)
	if w["crit"] <= 2 {
		t.Errorf("critical host in wave %d, want after the first 2", w["crit"])
	}
	if !strings.Contains(reasonOf(p, "crit"), "critical_not_early") {
		t.Errorf("reason %q", reasonOf(p, "crit"))
	}
	for _, wv := range p.Waves {
		if wv.Hosts > 2 {
			t.Errorf("wave %d holds %d hosts; cutover capacity is 1 per window × 2 parallel", wv.Number, wv.Hosts)
		}
	}
	// max_dependants 0: t4 has a dependant, so it is no pilot.
	if w["t4"] == 1 {
		t.Errorf("t4 (one dependant) in the pilot with max_dependants 0")
	}
	found := false
	for _, wv := range p.Waves {
		for _, m := range wv.Members {
			found = found || strings.Contains(m.Reason, "cutover capacity 2 (1 hosts per cutover window × 2 parallel cutovers)")
		}
	}
	if !found {
		t.Errorf("no reason names the cutover capacity")
	}
	for _, wv := range p.Waves {
		if wv.Confidence == "" || wv.Risk == "" {
			t.Errorf("wave %d unrated", wv.Number)
		}
	}
	if r := p.Waves[len(p.Waves)-1]; !strings.Contains(strings.Join(r.RiskFactors, ";"), "critical") && w["crit"] == r.Number {
		t.Errorf("the critical host's wave names no critical factor: %v", r.RiskFactors)
	}
}

// With strong_dependencies_together off, a two-way dependency no longer
// forces one wave: the loop is broken at its lightest call, named under
// waived, and every other dependency still orders the waves.
func TestStrongDependenciesOff(t *testing.T) {
	e := &planner.Estate{Hosts: []planner.Host{host("a", "", "test", "low", 1), host("b", "", "test", "low", 1), host("c", "", "test", "low", 1)},
		Connections: []planner.Connection{conn("a", "b", 8080), {Src: "b", Dst: "a", Port: 9000, Protocol: "tcp", Count: 5}, conn("b", "c", 5432)}}
	c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: 1}
	p := build(t, e, plain(planner.Rules{}), c)
	if len(p.Infeasible) == 0 || p.Infeasible[0].Kind != "too-big" {
		t.Fatalf("with the rule on, the 2-host cycle cannot fit a 1-host wave: %+v", p.Infeasible)
	}
	off := false
	c.WaveRules.StrongDependenciesTogether = &off
	p = build(t, e, plain(planner.Rules{}), c)
	w := waveOf(p)
	if len(p.Unplaced) != 0 || !(w["c"] < w["b"] && w["b"] < w["a"]) {
		t.Fatalf("waves %v, unplaced %v: want c, then b, then a (b → a is the lightest call)", w, p.Unplaced)
	}
	if len(p.Waived) != 1 || !strings.Contains(p.Waived[0], "b → a (port 9000, 5 connections)") {
		t.Fatalf("waived %v", p.Waived)
	}
}
