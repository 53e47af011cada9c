// Package topology aggregates a tenant's dependency graph on the server for
// the topology screen (issue 14): at the application level by default
// (applications, open application suggestions, shared services and the
// unassigned hosts of each environment as nodes; the connections between
// their hosts summed into weighted edges), or one node's hosts with its
// external edges kept (drill-down). Each node carries the wave of the plan
// most of its hosts move in, and the planner's own dependency cycles are
// mapped onto the nodes and edges they cross.
//
// Build is pure (rows in, graph out) so it can be tested without a
// database; Load reads the rows with a constant number of queries (hosts
// and connections in id-ordered pages), whatever the size of the estate.
package topology

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Node kinds.
const (
	KindApplication = "application" // a labelled application
	KindSuggestion  = "suggestion"  // an open application suggestion (inferred from traffic)
	KindShared      = "shared"      // a shared service of the plan (one host)
	KindUnassigned  = "unassigned"  // the hosts of one environment in no application
	KindHost        = "host"        // one host (drill-down)
	KindOther       = "other"       // every node not on this page, as one
)

// Page limits: a page holds at most MaxNodes nodes and MaxEdges edges (the
// cost limits of graph/limits.go price the lists with the same bounds).
const (
	MaxNodes     = 1000
	MaxEdges     = 5000
	MaxCycles    = 200
	MaxPorts     = 5
	MaxCycleKeys = 20
	DefaultNodes = 500
	DefaultEdges = 3000
)

// OtherKey is the key of the node that stands for every node not on the page.
const OtherKey = "other"

// Host is one host row.
type Host struct {
	ID          int
	Name        string
	Environment string
	AppID       int // 0 = none
}

// Suggestion is an open application suggestion: Extends names the
// labelled application it would join ("" = a new one).
type Suggestion struct {
	ID      int
	Name    string
	Extends string
	Members []int
}

// Shared is a shared service of the plan.
type Shared struct {
	HostID int
	Name   string
}

// Conn is one connection row between two hosts.
type Conn struct {
	Src, Dst int
	Port     int
	Process  string
	Count    int64
	Bytes    int64
}

// Cycle is one of the planner's cycles (planner.Cycle with ent host ids).
// Hosts is the loop in order for a cycle among hosts, pairs of calls
// (caller, callee, caller, callee, ...) for one between move groups.
type Cycle struct {
	Chain         string
	Hosts         []int
	Size          int
	BetweenGroups bool
}

// Input is everything Build needs.
type Input struct {
	Hosts        []Host
	Applications map[int]string
	Suggestions  []Suggestion
	Shared       []Shared
	Wave         map[int]int // host id -> wave ordinal (absent = in no wave)
	Waves        int         // waves of the plan
	Conns        []Conn
	Cycles       []Cycle
	// NoisePorts and NoiseProcesses are left out as the planner leaves
	// them out (DNS, NTP, monitoring, backups...): every host has them.
	NoisePorts     map[int]bool
	NoiseProcesses map[string]bool
	// NoiseRows counts noise rows already left out of Conns (Load filters
	// them in SQL).
	NoiseRows int
}

// Options choose the level and page.
type Options struct {
	// Focus is the key of the node to drill into ("" = application level).
	Focus    string
	First    int // nodes per page (DefaultNodes when 0)
	After    int // nodes skipped
	MaxEdges int // DefaultEdges when 0
}

// Node is a node of the graph.
type Node struct {
	Key         string
	Kind        string
	Label       string
	RefID       int // application, suggestion or host id (0 for unassigned and other)
	Hosts       int
	Environment string // a host's; the one most hosts of a group have
	Wave        int    // the wave most hosts move in (0 = none)
	Waves       int    // distinct waves its hosts move in
	Members     int    // nodes it stands for (1, or more for the other node)
	Cycles      int    // planner cycles with a host in it
	InCycle     bool
	// Suggested counts the hosts without its label that join an
	// application through an open suggestion extending it.
	Suggested int
}

// Edge is the sum of the connections from one node's hosts to another's.
type Edge struct {
	Source, Target string
	Connections    int   // connection rows
	Weight         int64 // observed connection count
	Bytes          int64
	CrossWeight    int64 // the part of Weight whose two hosts move in different waves
	Ports          []int // heaviest first, at most MaxPorts
	InCycle        bool  // a planner cycle runs along it
}

// CycleView is a planner cycle with the nodes it touches.
type CycleView struct {
	Chain         string
	Size          int
	BetweenGroups bool
	Nodes         []string // distinct node keys, in the order of the cycle (at most MaxCycleKeys)
	Spans         bool     // it touches more than one node at this level
}

// Graph is one page of the topology.
type Graph struct {
	Focus        *Node // the node drilled into, nil at the application level
	Hosts        int   // hosts at this level (the tenant's, or the focus's)
	TotalNodes   int   // nodes at this level, every page
	TotalEdges   int   // edges between them, every page
	Nodes        []Node
	Edges        []Edge
	OmittedEdges int // edges of this page left out beyond MaxEdges (the lightest)
	Cycles       []CycleView
	CycleCount   int // the planner's cycles
	SpanCycles   int // the planner's cycles that cross nodes at this level
	Noise        int // connection rows left out as noise
	HasNext      bool
	Offset       int
}

type edgeAcc struct {
	Edge
	ports map[int]int64
}

// Build aggregates in into one page of the graph asked for by opt.
func Build(in Input, opt Options) Graph {
	first := opt.First
	if first <= 0 || first > MaxNodes {
		first = DefaultNodes
	}
	maxEdges := opt.MaxEdges
	if maxEdges <= 0 || maxEdges > MaxEdges {
		maxEdges = DefaultEdges
	}
	// Every host's group at the application level.
	group := make(map[int]string, len(in.Hosts))
	nodes := map[string]*Node{}
	sharedName := make(map[int]string, len(in.Shared))
	shared := make(map[int]bool, len(in.Shared))
	for _, s := range in.Shared {
		sharedName[s.HostID], shared[s.HostID] = s.Name, true
	}
	appByName := make(map[string]int, len(in.Applications))
	for id, name := range in.Applications {
		appByName[name] = id
	}
	suggestionOf := map[int]*Suggestion{}
	for i := range in.Suggestions {
		for _, h := range in.Suggestions[i].Members {
			suggestionOf[h] = &in.Suggestions[i]
		}
	}
	envCount := map[string]map[string]int{}
	waveCount := map[string]map[int]int{}
	hostByID := make(map[int]*Host, len(in.Hosts))
	for i := range in.Hosts {
		h := &in.Hosts[i]
		hostByID[h.ID] = h
		var key string
		var n Node
		switch s := suggestionOf[h.ID]; {
		case shared[h.ID]:
			key, n = "x"+strconv.Itoa(h.ID), Node{Kind: KindShared, Label: orName(sharedName[h.ID], h.Name), RefID: h.ID}
		case h.AppID != 0:
			key, n = "a"+strconv.Itoa(h.AppID), Node{Kind: KindApplication, Label: in.Applications[h.AppID], RefID: h.AppID}
		case s != nil && s.Extends != "" && appByName[s.Extends] != 0:
			id := appByName[s.Extends]
			key, n = "a"+strconv.Itoa(id), Node{Kind: KindApplication, Label: s.Extends, RefID: id}
		case s != nil:
			key, n = "s"+strconv.Itoa(s.ID), Node{Kind: KindSuggestion, Label: s.Name, RefID: s.ID}
		default:
			env := orName(h.Environment, "unknown")
			key, n = "u:"+env, Node{Kind: KindUnassigned, Label: env}
		}
		joins := h.AppID == 0 && n.Kind == KindApplication
		group[h.ID] = key
		nd := nodes[key]
		if nd == nil {
			n.Key, n.Members = key, 1
			nd = &n
			nodes[key] = nd
			envCount[key] = map[string]int{}
			waveCount[key] = map[int]int{}
		}
		nd.Hosts++
		if joins {
			nd.Suggested++
		}
		envCount[key][h.Environment]++
		if w := in.Wave[h.ID]; w > 0 {
			waveCount[key][w]++
		}
	}
	for key, nd := range nodes {
		nd.Environment = mode(envCount[key], cmp.Compare[string])
		nd.Wave = mode(waveCount[key], cmp.Compare[int])
		nd.Waves = len(waveCount[key])
	}

	// The level: every group, or the focus's hosts and the groups they talk to.
	var focus *Node
	key := func(h int) string { return group[h] }
	level := nodes
	if opt.Focus != "" {
		if f := nodes[opt.Focus]; f != nil {
			cp := *f
			focus = &cp
			level = map[string]*Node{}
			for i := range in.Hosts {
				h := &in.Hosts[i]
				if group[h.ID] != opt.Focus {
					continue
				}
				k := "h" + strconv.Itoa(h.ID)
				n := &Node{Key: k, Kind: KindHost, Label: h.Name, RefID: h.ID, Hosts: 1, Environment: h.Environment, Members: 1}
				if w := in.Wave[h.ID]; w > 0 {
					n.Wave, n.Waves = w, 1
				}
				level[k] = n
			}
			key = func(h int) string {
				if g := group[h]; g != opt.Focus {
					return g
				}
				return "h" + strconv.Itoa(h)
			}
		} else {
			focus = &Node{Key: opt.Focus}
			level = map[string]*Node{}
		}
	}

	// Edges at this level. In a drill-down only edges with a focus host
	// at one end count; the neighbours they reach join the level.
	g := Graph{Focus: focus, CycleCount: len(in.Cycles), Noise: in.NoiseRows}
	acc := map[[2]string]*edgeAcc{}
	for _, c := range in.Conns {
		if c.Src == c.Dst || hostByID[c.Src] == nil || hostByID[c.Dst] == nil {
			continue
		}
		if in.NoisePorts[c.Port] || (c.Process != "" && in.NoiseProcesses[strings.ToLower(c.Process)]) {
			g.Noise++
			continue
		}
		a, b := key(c.Src), key(c.Dst)
		if a == b {
			continue
		}
		if focus != nil {
			if group[c.Src] != opt.Focus && group[c.Dst] != opt.Focus {
				continue
			}
			for _, k := range []string{a, b} {
				if level[k] == nil {
					if n := nodes[k]; n != nil {
						cp := *n
						level[k] = &cp
					}
				}
			}
		}
		e := acc[[2]string{a, b}]
		if e == nil {
			e = &edgeAcc{Edge: Edge{Source: a, Target: b}, ports: map[int]int64{}}
			acc[[2]string{a, b}] = e
		}
		w := max(c.Count, 1)
		e.Connections++
		e.Weight += w
		e.Bytes += c.Bytes
		e.ports[c.Port] += w
		if ws, wd := in.Wave[c.Src], in.Wave[c.Dst]; ws != wd {
			e.CrossWeight += w
		}
	}
	g.TotalEdges = len(acc)

	// Cycles: which nodes each touches, which edges it runs along.
	cycleEdges := map[[2]string]bool{}
	nodeCycles := map[string]int{}
	var views []CycleView
	for _, cy := range in.Cycles {
		var arcs [][2]int
		if cy.BetweenGroups {
			for i := 0; i+1 < len(cy.Hosts); i += 2 {
				arcs = append(arcs, [2]int{cy.Hosts[i], cy.Hosts[i+1]})
			}
		} else {
			for i := range cy.Hosts {
				arcs = append(arcs, [2]int{cy.Hosts[i], cy.Hosts[(i+1)%len(cy.Hosts)]})
			}
		}
		v := CycleView{Chain: cy.Chain, Size: cy.Size, BetweenGroups: cy.BetweenGroups}
		seen := map[string]bool{}
		for _, h := range cy.Hosts {
			if hostByID[h] == nil {
				continue
			}
			k := key(h)
			if !seen[k] && level[k] != nil {
				seen[k] = true
				nodeCycles[k]++
				if len(v.Nodes) < MaxCycleKeys {
					v.Nodes = append(v.Nodes, k)
				}
			}
		}
		for _, a := range arcs {
			if hostByID[a[0]] == nil || hostByID[a[1]] == nil {
				continue
			}
			if ka, kb := key(a[0]), key(a[1]); ka != kb {
				cycleEdges[[2]string{ka, kb}] = true
			}
		}
		v.Spans = len(seen) > 1
		if v.Spans {
			g.SpanCycles++
		}
		if len(seen) > 0 {
			views = append(views, v)
		}
	}

	// Order and page the nodes: a drill-down's own hosts first (by name),
	// then the heaviest groups.
	all := make([]*Node, 0, len(level))
	for k, n := range level {
		n.Cycles = nodeCycles[k]
		n.InCycle = n.Cycles > 0
		all = append(all, n)
		if focus == nil || n.Kind == KindHost {
			g.Hosts += n.Hosts
		}
	}
	slices.SortFunc(all, func(x, y *Node) int {
		if c := cmp.Compare(rank(x), rank(y)); c != 0 {
			return c
		}
		if x.Kind == KindHost && y.Kind == KindHost {
			if c := cmp.Compare(x.Label, y.Label); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(y.Hosts, x.Hosts); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Label, y.Label); c != 0 {
			return c
		}
		return cmp.Compare(x.Key, y.Key)
	})
	g.TotalNodes = len(all)
	after := min(max(opt.After, 0), len(all))
	end := min(after+first, len(all))
	g.Offset, g.HasNext = after, end < len(all)
	onPage := map[string]bool{}
	for _, n := range all[after:end] {
		onPage[n.Key] = true
		g.Nodes = append(g.Nodes, *n)
	}
	// Every node off the page is one "other" node, so the weight towards
	// the rest of the estate stays visible.
	var other *Node
	if len(all) > end-after {
		other = &Node{Key: OtherKey, Kind: KindOther}
		for _, n := range all {
			if !onPage[n.Key] {
				other.Members++
				other.Hosts += n.Hosts
			}
		}
	}
	pageAcc := map[[2]string]*edgeAcc{}
	for k, e := range acc {
		a, b := k[0], k[1]
		if !onPage[a] {
			a = OtherKey
		}
		if !onPage[b] {
			b = OtherKey
		}
		if a == b {
			continue
		}
		pe := pageAcc[[2]string{a, b}]
		if pe == nil {
			pe = &edgeAcc{Edge: Edge{Source: a, Target: b}, ports: map[int]int64{}}
			pageAcc[[2]string{a, b}] = pe
		}
		pe.Connections += e.Connections
		pe.Weight += e.Weight
		pe.Bytes += e.Bytes
		pe.CrossWeight += e.CrossWeight
		for p, w := range e.ports {
			pe.ports[p] += w
		}
		if cycleEdges[k] {
			pe.InCycle = true
		}
	}
	edges := make([]*edgeAcc, 0, len(pageAcc))
	for _, e := range pageAcc {
		edges = append(edges, e)
	}
	// The heaviest edges (cycle edges first: they are what the user looks for).
	slices.SortFunc(edges, func(x, y *edgeAcc) int {
		if x.InCycle != y.InCycle {
			if x.InCycle {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(y.Weight, x.Weight); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Source, y.Source); c != 0 {
			return c
		}
		return cmp.Compare(x.Target, y.Target)
	})
	if len(edges) > maxEdges {
		g.OmittedEdges = len(edges) - maxEdges
		edges = edges[:maxEdges]
	}
	usesOther := false
	for _, e := range edges {
		e.Ports = topPorts(e.ports)
		g.Edges = append(g.Edges, e.Edge)
		if e.Source == OtherKey || e.Target == OtherKey {
			usesOther = true
		}
	}
	if other != nil && usesOther {
		g.Nodes = append(g.Nodes, *other)
	}

	// The cycles of this page: those that cross nodes first, then the largest.
	slices.SortStableFunc(views, func(x, y CycleView) int {
		if x.Spans != y.Spans {
			if x.Spans {
				return -1
			}
			return 1
		}
		return cmp.Compare(y.Size, x.Size)
	})
	for _, v := range views {
		if len(g.Cycles) == MaxCycles {
			break
		}
		for _, k := range v.Nodes {
			if onPage[k] {
				g.Cycles = append(g.Cycles, v)
				break
			}
		}
	}
	return g
}

// rank orders kinds on a page: hosts of a drill-down, then groups, the
// unassigned buckets last.
func rank(n *Node) int {
	switch n.Kind {
	case KindHost:
		return 0
	case KindUnassigned:
		return 2
	}
	return 1
}

func topPorts(m map[int]int64) []int {
	ps := make([]int, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b int) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if len(ps) > MaxPorts {
		ps = ps[:MaxPorts]
	}
	return ps
}

// mode is the most frequent key (the smallest of a tie), the zero value when empty.
func mode[K comparable](m map[K]int, less func(a, b K) int) K {
	var best K
	n := -1
	for k, c := range m {
		if c > n || c == n && less(k, best) < 0 {
			best, n = k, c
		}
	}
	return best
}

func orName(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
