package graph

import (
	"context"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/internal/topology"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// topology answers Query.topology: the rows are read once per request
// (hosts and connections in pages, a constant number of queries) and
// aggregated in internal/topology. The platform operator's topology is its
// home tenant's, as its business case is: a graph mixing tenants would mean
// nothing.
func (r *queryResolver) topology(ctx context.Context, planID *int, focus *string, first *int, offset *int, maxEdges *int) (*model.Topology, error) {
	v := viewer.FromContext(ctx)
	ctx = viewer.NewContext(ctx, v.Within(v.TenantID))
	opt := topology.Options{First: topology.DefaultNodes, MaxEdges: topology.DefaultEdges}
	if first != nil {
		if *first < 1 || *first > topology.MaxNodes {
			return nil, ferry.Errorf(ferry.EINVALID, "topology.first: %d is not between 1 and %d", *first, topology.MaxNodes)
		}
		opt.First = *first
	}
	if offset != nil {
		if *offset < 0 {
			return nil, ferry.Errorf(ferry.EINVALID, "topology.offset: %d is negative", *offset)
		}
		opt.After = *offset
	}
	if maxEdges != nil {
		if *maxEdges < 0 || *maxEdges > topology.MaxEdges {
			return nil, ferry.Errorf(ferry.EINVALID, "topology.maxEdges: %d is not between 0 and %d", *maxEdges, topology.MaxEdges)
		}
		opt.MaxEdges = *maxEdges
	}
	if focus != nil {
		opt.Focus = *focus
	}
	pid := 0
	if planID != nil {
		pid = *planID
	}
	in, p, err := topology.Load(ctx, r.Client, pid)
	if err != nil {
		return nil, err
	}
	g := topology.Build(*in, opt)
	if g.Focus != nil && g.Focus.Kind == "" {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "topology.focus: no node %q in this tenant's topology", opt.Focus)
	}
	out := &model.Topology{Plan: p, Waves: in.Waves, Hosts: g.Hosts, TotalNodes: g.TotalNodes, TotalEdges: g.TotalEdges,
		OmittedEdges: g.OmittedEdges, CycleCount: g.CycleCount, SpanCycles: g.SpanCycles, NoiseConnections: g.Noise,
		Offset: g.Offset, HasNextPage: g.HasNext,
		Nodes: make([]*model.TopologyNode, 0, len(g.Nodes)), Edges: make([]*model.TopologyEdge, 0, len(g.Edges)),
		Cycles: make([]*model.TopologyCycle, 0, len(g.Cycles))}
	if g.Focus != nil {
		out.Focus = nodeOut(*g.Focus)
	}
	for _, n := range g.Nodes {
		out.Nodes = append(out.Nodes, nodeOut(n))
	}
	for _, e := range g.Edges {
		out.Edges = append(out.Edges, &model.TopologyEdge{Source: e.Source, Target: e.Target, Connections: e.Connections,
			Weight: int(e.Weight), Bytes: int(e.Bytes), CrossWeight: int(e.CrossWeight), Ports: e.Ports, InCycle: e.InCycle})
	}
	for _, c := range g.Cycles {
		out.Cycles = append(out.Cycles, &model.TopologyCycle{Chain: c.Chain, Size: c.Size, BetweenGroups: c.BetweenGroups, Nodes: c.Nodes, Spans: c.Spans})
	}
	return out, nil
}

func nodeOut(n topology.Node) *model.TopologyNode {
	out := &model.TopologyNode{Key: n.Key, Kind: n.Kind, Label: n.Label, Hosts: n.Hosts, Environment: n.Environment,
		Waves: n.Waves, Members: n.Members, Cycles: n.Cycles, Suggested: n.Suggested}
	if n.RefID != 0 {
		id := n.RefID
		out.RefID = &id
	}
	if n.Wave != 0 {
		w := n.Wave
		out.Wave = &w
	}
	return out
}
