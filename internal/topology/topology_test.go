package topology

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A small estate: application shop (hosts 1, 2) that an open suggestion
// extends with host 3, a new suggestion (4, 5), a shared service 6 labelled
// shop, and 7 in nothing. 1 ↔ 4 is a planner cycle across two nodes.
func sample() Input {
	return Input{
		Hosts: []Host{
			{ID: 1, Name: "web", Environment: "production", AppID: 10},
			{ID: 2, Name: "db", Environment: "production", AppID: 10},
			{ID: 3, Name: "cache", Environment: "production"},
			{ID: 4, Name: "api", Environment: "test"},
			{ID: 5, Name: "worker", Environment: "test"},
			{ID: 6, Name: "nfs", Environment: "production", AppID: 10},
			{ID: 7, Name: "lone", Environment: ""},
		},
		Applications: map[int]string{10: "shop"},
		Suggestions: []Suggestion{
			{ID: 20, Name: "shop", Extends: "shop", Members: []int{3}},
			{ID: 21, Name: "suggested-api", Members: []int{4, 5}},
		},
		Shared: []Shared{{HostID: 6, Name: "nfs"}},
		Wave:   map[int]int{1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1},
		Waves:  2,
		Conns: []Conn{
			{Src: 1, Dst: 2, Port: 5432, Count: 10},
			{Src: 1, Dst: 4, Port: 8080, Count: 3, Bytes: 100},
			{Src: 4, Dst: 1, Port: 8443, Count: 2},
			{Src: 1, Dst: 4, Port: 9090, Count: 1},
			{Src: 5, Dst: 6, Port: 2049, Count: 7},
			{Src: 7, Dst: 1, Port: 53, Count: 99},                      // noise port
			{Src: 7, Dst: 1, Port: 7000, Process: "Chronyd", Count: 9}, // noise process
			{Src: 2, Dst: 2, Port: 1, Count: 5},                        // self
		},
		Cycles:         []Cycle{{Chain: "web ↔ api", Hosts: []int{1, 4}, Size: 2}, {Chain: "db ↔ cache", Hosts: []int{2, 3}, Size: 2}},
		NoisePorts:     map[int]bool{53: true},
		NoiseProcesses: map[string]bool{"chronyd": true},
	}
}

func TestBuildApplicationLevel(t *testing.T) {
	g := Build(sample(), Options{})
	got := map[string]Node{}
	for _, n := range g.Nodes {
		got[n.Key] = n
	}
	want := map[string]Node{
		"a10":       {Key: "a10", Kind: KindApplication, Label: "shop", RefID: 10, Hosts: 3, Environment: "production", Wave: 2, Waves: 2, Members: 1, Cycles: 2, InCycle: true, Suggested: 1},
		"s21":       {Key: "s21", Kind: KindSuggestion, Label: "suggested-api", RefID: 21, Hosts: 2, Environment: "test", Wave: 1, Waves: 1, Members: 1, Cycles: 1, InCycle: true},
		"x6":        {Key: "x6", Kind: KindShared, Label: "nfs", RefID: 6, Hosts: 1, Environment: "production", Wave: 1, Waves: 1, Members: 1},
		"u:unknown": {Key: "u:unknown", Kind: KindUnassigned, Label: "unknown", Hosts: 1, Members: 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("nodes (-want +got):\n%s", d)
	}
	if g.Hosts != 7 || g.TotalNodes != 4 || g.Noise != 2 || g.CycleCount != 2 || g.SpanCycles != 1 {
		t.Fatalf("hosts %d nodes %d noise %d cycles %d/%d", g.Hosts, g.TotalNodes, g.Noise, g.CycleCount, g.SpanCycles)
	}
	edges := map[[2]string]Edge{}
	for _, e := range g.Edges {
		edges[[2]string{e.Source, e.Target}] = e
	}
	wantEdges := map[[2]string]Edge{
		{"a10", "s21"}: {Source: "a10", Target: "s21", Connections: 2, Weight: 4, Bytes: 100, CrossWeight: 4, Ports: []int{8080, 9090}, InCycle: true},
		{"s21", "a10"}: {Source: "s21", Target: "a10", Connections: 1, Weight: 2, CrossWeight: 2, Ports: []int{8443}, InCycle: true},
		{"s21", "x6"}:  {Source: "s21", Target: "x6", Connections: 1, Weight: 7, Ports: []int{2049}},
	}
	if d := cmp.Diff(wantEdges, edges); d != "" {
		t.Fatalf("edges (-want +got):\n%s", d)
	}
	// Cycle edges come first, then by weight.
	if !g.Edges[0].InCycle || g.Edges[2].InCycle {
		t.Fatalf("edge order %v", g.Edges)
	}
	if len(g.Cycles) != 2 || !g.Cycles[0].Spans || g.Cycles[0].Chain != "web ↔ api" {
		t.Fatalf("cycles %+v", g.Cycles)
	}
}

func TestBuildDrillDownKeepsExternalEdges(t *testing.T) {
	g := Build(sample(), Options{Focus: "a10"})
	if g.Focus == nil || g.Focus.Label != "shop" || g.Hosts != 3 {
		t.Fatalf("focus %+v hosts %d", g.Focus, g.Hosts)
	}
	var keys []string
	for _, n := range g.Nodes {
		keys = append(keys, n.Key)
	}
	// Its hosts by name, then the groups they talk to, heaviest first.
	if d := cmp.Diff([]string{"h3", "h2", "h1", "s21"}, keys); d != "" {
		t.Fatalf("nodes (-want +got):\n%s", d)
	}
	var external int64
	for _, e := range g.Edges {
		if e.Source == "s21" || e.Target == "s21" {
			external += e.Weight
		}
	}
	if external != 6 {
		t.Fatalf("external weight %d, want 6 (1→4 twice, 4→1)", external)
	}
	if g := Build(sample(), Options{Focus: "a99"}); g.Focus == nil || g.Focus.Kind != "" || len(g.Nodes) != 0 {
		t.Fatalf("unknown focus: %+v", g)
	}
}

func TestBuildPagesWithOneNodeForTheRest(t *testing.T) {
	in := sample()
	p1 := Build(in, Options{First: 1})
	if len(p1.Nodes) != 2 || p1.Nodes[0].Key != "a10" || p1.Nodes[1].Key != OtherKey || !p1.HasNext {
		t.Fatalf("page 1: %+v", p1.Nodes)
	}
	if o := p1.Nodes[1]; o.Members != 3 || o.Hosts != 4 {
		t.Fatalf("other node %+v", o)
	}
	var w int64
	for _, e := range p1.Edges {
		w += e.Weight
	}
	if w != 6 {
		t.Fatalf("page 1 keeps %d weight towards the rest, want 6", w)
	}
	last := Build(in, Options{First: 1, After: 3})
	if last.HasNext || last.Nodes[0].Key != "u:unknown" {
		t.Fatalf("last page %+v", last.Nodes)
	}
	capped := Build(in, Options{MaxEdges: 1})
	if len(capped.Edges) != 1 || capped.OmittedEdges != 2 {
		t.Fatalf("maxEdges 1: %d edges, %d omitted", len(capped.Edges), capped.OmittedEdges)
	}
}
