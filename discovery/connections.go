package discovery

import (
	"net/netip"
	"sort"
	"strconv"
)

// DeriveConnections turns one host's sockets (from an agent, or from an
// ss/netstat capture of that host) into dependencies. An established
// connection whose local port is a listening port is inbound (the peer
// depends on self); anything else is outbound (self depends on the peer's
// port). Loopback traffic is a host talking to itself and is dropped.
// Connections to the same peer, port and process are counted once each and
// aggregated.
func DeriveConnections(src SourceRef, self Endpoint, listening []Socket, conns []Connection) []ObservedConnection {
	listen := map[int]bool{}
	for _, s := range listening {
		listen[s.Port] = true
	}
	type key struct {
		inbound bool
		peer    string
		port    int
		process string
	}
	agg := map[key]*ObservedConnection{}
	var order []key
	for _, c := range conns {
		if c.State != "ESTABLISHED" {
			continue
		}
		remote, err := netip.ParseAddr(c.RemoteAddress)
		if err != nil || remote.Unmap().IsLoopback() || remote.IsUnspecified() {
			continue
		}
		peer := remote.Unmap().String()
		var k key
		if listen[c.LocalPort] {
			k = key{true, peer, c.LocalPort, c.Process}
		} else {
			k = key{false, peer, c.RemotePort, c.Process}
		}
		oc := agg[k]
		if oc == nil {
			oc = &ObservedConnection{Source: src, Port: k.port, Protocol: "tcp", Process: c.Process}
			if k.inbound {
				oc.Src = Endpoint{Address: peer}
				oc.Dst = self
			} else {
				oc.Src = self
				oc.Dst = Endpoint{Address: netip.AddrPortFrom(remote.Unmap(), uint16(k.port)).String()}
			}
			agg[k] = oc
			order = append(order, k)
		}
		oc.Count++
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.peer != b.peer {
			return a.peer < b.peer
		}
		if a.port != b.port {
			return a.port < b.port
		}
		return strconv.FormatBool(a.inbound) < strconv.FormatBool(b.inbound)
	})
	out := make([]ObservedConnection, 0, len(order))
	for _, k := range order {
		out = append(out, *agg[k])
	}
	return out
}

// ConnectionsFromInventory derives an agent host's dependencies; the agent's
// record carries the ref "agent:<id>".
func ConnectionsFromInventory(agentID string, inv Inventory) []ObservedConnection {
	src := SourceRef{Kind: SourceAgent, Name: agentID, ObservedAt: inv.CollectedAt}
	return DeriveConnections(src, Endpoint{Ref: "agent:" + agentID, Name: inv.Hostname}, inv.Listening, inv.Connections)
}
