package planner

import "slices"

// csr is a directed graph in compressed sparse row form: the out-neighbours
// of v are to[off[v]:off[v+1]]. It keeps 100k-host graphs in a few flat
// slices instead of a million small ones.
type csr struct {
	off []int32
	to  []int32
	w   []int64 // optional weights, parallel to to
}

func (g *csr) n() int { return len(g.off) - 1 }

func (g *csr) out(v int) []int32 { return g.to[g.off[v]:g.off[v+1]] }

// arc is one weighted edge used to build a csr.
type arc struct {
	from, to int32
	w        int64
}

// buildCSR sorts arcs by (from, to), merges duplicates by summing weights
// and returns the graph over n vertices.
func buildCSR(n int, arcs []arc) *csr {
	slices.SortFunc(arcs, func(a, b arc) int {
		if a.from != b.from {
			return int(a.from - b.from)
		}
		return int(a.to - b.to)
	})
	g := &csr{off: make([]int32, n+1)}
	g.to = make([]int32, 0, len(arcs))
	g.w = make([]int64, 0, len(arcs))
	for i, a := range arcs {
		if i > 0 && arcs[i-1].from == a.from && arcs[i-1].to == a.to {
			g.w[len(g.w)-1] += a.w
			continue
		}
		g.to = append(g.to, a.to)
		g.w = append(g.w, a.w)
		g.off[a.from+1]++
	}
	for v := 0; v < n; v++ {
		g.off[v+1] += g.off[v]
	}
	return g
}

// sccs returns the strongly connected component of every vertex, with
// components numbered in reverse topological order (Tarjan's order: a
// component's successors get smaller numbers). It is Tarjan's algorithm
// with an explicit stack, so a 100k-long chain cannot overflow the goroutine
// stack.
func sccs(g *csr) (comp []int32, count int) {
	n := g.n()
	const unvisited = -1
	index := make([]int32, n)
	low := make([]int32, n)
	comp = make([]int32, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = unvisited
		comp[i] = -1
	}
	var stack []int32
	type frame struct{ v, next int32 }
	var call []frame
	var next int32
	for root := 0; root < n; root++ {
		if index[root] != unvisited {
			continue
		}
		call = append(call, frame{int32(root), g.off[root]})
		index[root], low[root] = next, next
		next++
		stack = append(stack, int32(root))
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.next < g.off[v+1] {
				u := g.to[f.next]
				f.next++
				if index[u] == unvisited {
					index[u], low[u] = next, next
					next++
					stack = append(stack, u)
					onStack[u] = true
					call = append(call, frame{u, g.off[u]})
				} else if onStack[u] && index[u] < low[v] {
					low[v] = index[u]
				}
				continue
			}
			// v is finished.
			if low[v] == index[v] {
				for {
					u := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[u] = false
					comp[u] = int32(count)
					if u == v {
						break
					}
				}
				count++
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				if low[v] < low[p] {
					low[p] = low[v]
				}
			}
		}
	}
	return comp, count
}

// cyclePath returns a shortest cycle through s that stays inside s's
// component, as a vertex list starting and ending at s.
func cyclePath(g *csr, comp []int32, s int32) []int32 {
	parent := map[int32]int32{s: -1}
	queue := []int32{s}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, u := range g.out(int(v)) {
			if comp[u] != comp[s] {
				continue
			}
			if u == s {
				var path []int32
				for x := v; x != -1; x = parent[x] {
					path = append(path, x)
				}
				slices.Reverse(path) // s ... v
				return append(path, s)
			}
			if _, seen := parent[u]; !seen {
				parent[u] = v
				queue = append(queue, u)
			}
		}
	}
	return []int32{s}
}

// unionFind joins vertices into sets; the smallest index becomes the root,
// which keeps group numbering independent of union order.
type unionFind []int32

func newUnionFind(n int) unionFind {
	u := make(unionFind, n)
	for i := range u {
		u[i] = int32(i)
	}
	return u
}

func (u unionFind) find(x int32) int32 {
	for u[x] != x {
		u[x] = u[u[x]]
		x = u[x]
	}
	return x
}

func (u unionFind) union(a, b int32) bool {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return false
	}
	if rb < ra {
		ra, rb = rb, ra
	}
	u[rb] = ra
	return true
}

// heap is a binary heap ordered by less; small and typed, so the packing
// loop does not box every entry in an interface.
type heap[T any] struct {
	items []T
	less  func(a, b T) bool
}

func (h *heap[T]) len() int { return len(h.items) }

func (h *heap[T]) push(x T) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *heap[T]) peek() T { return h.items[0] }

func (h *heap[T]) pop() T {
	top := h.items[0]
	n := len(h.items) - 1
	h.items[0] = h.items[n]
	h.items = h.items[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(h.items[l], h.items[m]) {
			m = l
		}
		if r < n && h.less(h.items[r], h.items[m]) {
			m = r
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}
