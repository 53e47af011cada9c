package planner

import (
	"fmt"
	"slices"

	"github.com/ferry-migrate/ferry/i18n"
)

// Packing: why greedy growth plus local improvement.
//
// Minimising the dependency weight that crosses waves under capacity and
// order constraints is a constrained graph-partitioning problem (NP-hard),
// and the planner must handle 100k hosts in seconds, so it uses the classic
// two-step heuristic of graph partitioners:
//
//  1. Greedy growth. Waves are filled one at a time. A group is "ready" when
//     every group it depends on is already placed (in this wave or an
//     earlier one) and every "before" predecessor sits in an earlier wave,
//     so order rules hold by construction. Among ready groups the wave
//     takes, in turn: a group whose deadline (its own pin, or a pinned
//     successor's) is this wave; else the ready group with the most
//     dependency weight to groups already in this wave (affinity: a web tier
//     follows its app tier in); else a fresh seed in weakly-connected
//     component order, so one cluster is finished before the next starts. A
//     group that does not fit (hosts, bytes, keep-apart) waits for the next
//     wave. Each placement costs O(degree · log n).
//  2. Local improvement. Each unpinned group is offered the waves its
//     neighbours are in; it moves when that lowers the crossing weight and
//     every rule (order, capacity, keep-apart, pilot) still holds. Greedy
//     waves are usually full, so when the best wave lacks room the group
//     is swapped with an unrelated group of that wave if the pair's total
//     gain is positive (Kernighan–Lin's exchange step, one pair at a
//     time). A few passes repair choices made before later groups were
//     known; on generated estates they remove up to a further 89 % of the
//     greedy result's crossing weight (docs/bench/planner.md).
//
// Both steps visit groups in index order and break ties by index, so the
// same input always gives the same plan.
func (m *model) pack(earliest, deadline []int) (wave []int, warnings []string) {
	ng := len(m.groups)
	wave = make([]int, ng)
	m.readyAt = make([]int, ng)
	m.missWhy = make([]miss, ng)
	m.devTestWaived = make([]bool, ng)
	pending := make([]int32, ng)
	minWave := slices.Clone(earliest)
	remaining := 0
	for g := 0; g < ng; g++ {
		if m.bad[g] {
			continue
		}
		remaining++
		for _, p := range m.gpred[g] {
			if !m.bad[p.g] {
				pending[g]++
			}
		}
	}
	comp := m.components()

	type bEntry struct{ g, dl, comp int32 }
	type aEntry struct {
		g   int32
		aff int64
		dl  int32
	}
	dl := func(g int32) int32 { return int32(min(deadline[g], noDeadline)) }
	B := heap[bEntry]{less: func(a, b bEntry) bool {
		if a.dl != b.dl {
			return a.dl < b.dl
		}
		if a.comp != b.comp {
			return a.comp < b.comp
		}
		return a.g < b.g
	}}
	A := heap[aEntry]{less: func(a, b aEntry) bool {
		if a.aff != b.aff {
			return a.aff > b.aff
		}
		if a.dl != b.dl {
			return a.dl < b.dl
		}
		return a.g < b.g
	}}
	inB := make([]bool, ng)
	tried := make([]int32, ng)
	aff := make([]int64, ng)
	affStamp := make([]int32, ng)
	wait := map[int][]int32{}
	// Dev/test first: production groups are held back until no
	// non-production group is left to place (or can be placed).
	devFirst := on(m.c.WaveRules.DevTestFirst)
	separate := on(m.c.WaveRules.SeparateProduction)
	prodPhase := !devFirst
	nonprodLeft := 0
	for g := 0; g < ng; g++ {
		if !m.bad[g] && !m.groups[g].prod && !m.groups[g].shared {
			nonprodLeft++
		}
	}
	if nonprodLeft == 0 {
		prodPhase = true
	}
	var held []int32
	pushB := func(g int32) {
		if inB[g] {
			return
		}
		if !prodPhase && m.groups[g].prod && !m.groups[g].shared && deadline[g] >= noDeadline {
			held = append(held, g)
			inB[g] = true
			return
		}
		inB[g] = true
		B.push(bEntry{g, dl(g), comp[g]})
	}
	for g := 0; g < ng; g++ {
		if !m.bad[g] && pending[g] == 0 {
			if minWave[g] <= 1 {
				pushB(int32(g))
			} else {
				wait[minWave[g]] = append(wait[minWave[g]], int32(g))
			}
		}
	}
	// Deadlines to check at the close of each wave.
	var withDL []int32
	for g := 0; g < ng; g++ {
		if !m.bad[g] && deadline[g] < noDeadline {
			withDL = append(withDL, int32(g))
		}
	}
	slices.SortStableFunc(withDL, func(a, b int32) int { return deadline[a] - deadline[b] })

	pilot := m.c.Pilot.Hosts > 0
	const missLimit = 512
	m.waveProd = []int8{-1}
	for w := 1; remaining > 0; w++ {
		for _, g := range wait[w] {
			pushB(g)
		}
		delete(wait, w)
		capH, capB := m.waveCap(), int64(m.c.MaxBytesPerWave)
		if pilot && w == 1 {
			capH = m.pilotCap()
		}
		if len(m.waveProd) <= w {
			m.waveProd = append(m.waveProd, -1)
		}
		m.waveProd[w] = -1
		hostsIn, bytesIn := 0, int64(0)
		A.items = A.items[:0]
		var deferred []int32
		misses := 0
		// fits says whether g may join wave w, and if not, why (kept as a
		// record, formatted only for the reason text).
		fits := func(g int32) (bool, miss) {
			gr := m.groups[g]
			due := deadline[g] <= w
			// Shared services follow their placement policy, not the
			// environment rules: they are infrastructure for both.
			if !prodPhase && gr.prod && !due && !gr.shared {
				return false, miss{kind: missPhase, w: int32(w)}
			}
			if separate && !due && !gr.shared && m.waveProd[w] >= 0 && (m.waveProd[w] == 1) != gr.prod {
				return false, miss{kind: missClass, w: int32(w), n: int64(m.waveProd[w])}
			}
			if capH > 0 && hostsIn+len(gr.hosts) > capH {
				return false, miss{kind: missHosts, w: int32(w), n: int64(hostsIn)}
			}
			if capB > 0 && bytesIn+gr.bytes > capB {
				return false, miss{kind: missBytes, w: int32(w), n: bytesIn}
			}
			for _, h := range gr.hosts {
				for _, o := range m.apartOf[h] {
					if wave[m.hostGroup[o]] == w {
						return false, miss{kind: missApart, w: int32(w), a: o, b: h}
					}
				}
			}
			return true, miss{}
		}
		ready := func(g int32) bool { return pending[g] == 0 && minWave[g] <= w && wave[g] == 0 && !m.bad[g] }
		pick := func() (int32, bool) {
			for B.len() > 0 && wave[B.peek().g] != 0 {
				inB[B.pop().g] = false
			}
			if B.len() > 0 && int(B.peek().dl) <= w {
				e := B.pop()
				inB[e.g] = false
				return e.g, true
			}
			for A.len() > 0 {
				e := A.pop()
				if wave[e.g] != 0 || affStamp[e.g] != int32(w) || aff[e.g] != e.aff || tried[e.g] == int32(w) {
					continue
				}
				return e.g, true
			}
			if B.len() > 0 {
				e := B.pop()
				inB[e.g] = false
				return e.g, true
			}
			return 0, false
		}
		for {
			g, ok := pick()
			if !ok {
				break
			}
			if m.readyAt[g] == 0 {
				m.readyAt[g] = w
			}
			if tried[g] == int32(w) {
				deferred = append(deferred, g)
				continue
			}
			if ok, why := fits(g); !ok {
				tried[g] = int32(w)
				m.missWhy[g] = why
				deferred = append(deferred, g)
				misses++
				if misses > missLimit && hostsIn > 0 {
					break
				}
				continue
			}
			misses = 0
			gr := m.groups[g]
			wave[g] = w
			if m.waveProd[w] < 0 && !gr.shared {
				m.waveProd[w] = boolInt8(gr.prod)
			}
			remaining--
			if !gr.prod && !gr.shared {
				nonprodLeft--
			}
			hostsIn += len(gr.hosts)
			bytesIn += gr.bytes
			lo := m.gadj.off[g]
			for k, h := range m.gadj.out(int(g)) {
				if wave[h] != 0 || m.bad[h] {
					continue
				}
				if affStamp[h] != int32(w) {
					affStamp[h], aff[h] = int32(w), 0
				}
				aff[h] += m.gadj.w[int(lo)+k]
				if ready(h) && tried[h] != int32(w) {
					A.push(aEntry{h, aff[h], dl(h)})
				}
			}
			for _, s := range m.gsucc[g] {
				if m.bad[s.g] {
					continue
				}
				if s.lag > 0 && minWave[s.g] < w+s.lag {
					minWave[s.g] = w + s.lag
				}
				pending[s.g]--
				if pending[s.g] == 0 {
					if minWave[s.g] <= w {
						pushB(s.g)
						if affStamp[s.g] == int32(w) && aff[s.g] > 0 {
							A.push(aEntry{s.g, aff[s.g], dl(s.g)})
						}
					} else {
						wait[minWave[s.g]] = append(wait[minWave[s.g]], s.g)
					}
				}
			}
		}
		for _, g := range deferred {
			if wave[g] == 0 {
				inB[g] = false
				pushB(g)
			}
		}
		// Anything due by this wave that did not get in: its deadline (a
		// pin of its own or of a group after it) gives way, and the
		// conflict is named; it goes in the next wave with room.
		for len(withDL) > 0 && deadline[withDL[0]] <= w {
			g := withDL[0]
			withDL = withDL[1:]
			if wave[g] != 0 || m.bad[g] {
				continue
			}
			gr := m.groups[g]
			msg := fmt.Sprintf("group %s must be in wave %d or earlier (%s), but no wave up to %d had room (hosts %d, bytes %s) without breaking another rule",
				gr.name, deadline[g], m.deadlineText(g), w, len(gr.hosts), fmtBytes(gr.bytes))
			m.conflict(gr, "capacity", msg, []string{m.deadlineText(g), fmt.Sprintf("wave %d full", w)},
				"placed in the next wave with room; the pin that set the deadline is not met", gr.hosts...)
			deadline[g] = noDeadline
			if gr.pin > 0 {
				gr.pin, gr.droppedPin = 0, msg
			}
		}
		if !prodPhase && (nonprodLeft == 0 || hostsIn == 0) {
			// No dev/test group is left, or none can go before production
			// (each depends on a production group): production starts.
			prodPhase = true
			for g := 0; g < ng; g++ {
				if !m.bad[g] && wave[g] == 0 && !m.groups[g].prod && !m.groups[g].shared {
					m.devTestWaived[g] = true
					m.waived = append(m.waived, fmt.Sprintf("dev_test_first: %s moves after production it waits for (a dependency or a before rule outranks it)", m.groups[g].name))
				}
			}
			for _, g := range held {
				inB[g] = false
				if wave[g] == 0 {
					pushB(g)
				}
			}
			held = nil
			if hostsIn == 0 {
				w-- // the wave is still empty: fill it with production
				continue
			}
		}
		if hostsIn == 0 && remaining > 0 {
			if len(wait) == 0 && B.len() == 0 {
				// Nothing ready and nothing waiting: the rest is blocked.
				break
			}
			if B.len() == 0 {
				warnings = append(warnings, fmt.Sprintf("wave %d is empty: kept so that pinned and ordered wave numbers hold", w))
			} else if pilot && w == 1 {
				warnings = append(warnings, "wave 1 (pilot) is empty: no low-risk group was ready")
			} else {
				break // cannot happen: a group that fits no empty wave was reported as too big
			}
		}
	}
	return wave, warnings
}

// miss records why a wave did not take a group.
type miss struct {
	kind uint8
	w    int32
	n    int64
	a, b int32
}

const (
	missNone uint8 = iota
	missPhase
	missClass
	missHosts
	missBytes
	missApart
)

func (m *model) missMsg(x miss) i18n.Msg {
	switch x.kind {
	case missPhase:
		return i18n.M("plan.miss.phase")
	case missClass:
		kind := i18n.M("plan.word.non_production")
		if x.n == 1 {
			kind = i18n.M("plan.word.production")
		}
		return i18n.M("plan.miss.class", "wave", x.w, "kind", kind)
	case missHosts:
		return i18n.M("plan.miss.hosts", "wave", x.w, "n", x.n, "cap", m.capTextFor(int(x.w)))
	case missBytes:
		return i18n.M("plan.miss.bytes", "wave", x.w, "used", fmtBytes(x.n), "max", fmtBytes(int64(m.c.MaxBytesPerWave)))
	case missApart:
		return i18n.M("plan.miss.apart", "wave", x.w, "a", m.label(x.a), "b", m.label(x.b))
	}
	return i18n.Msg{}
}

func boolInt8(b bool) int8 {
	if b {
		return 1
	}
	return 0
}

// capTextFor names the host cap of wave w.
func (m *model) capTextFor(w int) string {
	if w == 1 && m.c.Pilot.Hosts > 0 {
		return fmt.Sprintf("pilot.hosts %d", m.pilotCap())
	}
	return m.capText()
}

func (m *model) deadlineText(g int32) string {
	// Walk to the pinned successor that sets the deadline.
	seen := map[int32]bool{}
	x := g
	var parts []string
	for !seen[x] {
		seen[x] = true
		gr := m.groups[x]
		if gr.pin > 0 {
			parts = append(parts, fmt.Sprintf("%s pinned to wave %d", m.label(gr.pinHost), gr.pin))
			break
		}
		next := int32(-1)
		for _, s := range m.gsucc[x] {
			if !m.bad[s.g] && (m.groups[s.g].pin > 0 || len(m.gsucc[s.g]) > 0) {
				next = s.g
				parts = append(parts, m.arcText(x, s.g))
				break
			}
		}
		if next < 0 {
			break
		}
		x = next
	}
	return joinSemi(parts)
}

// components numbers weakly connected components of the group graph in
// order of their lowest group index.
func (m *model) components() []int32 {
	ng := len(m.groups)
	uf := newUnionFind(ng)
	for g := 0; g < ng; g++ {
		for _, h := range m.gadj.out(g) {
			uf.union(int32(g), h)
		}
		for _, p := range m.gpred[g] {
			uf.union(int32(g), p.g)
		}
	}
	comp := make([]int32, ng)
	ids := map[int32]int32{}
	for g := 0; g < ng; g++ {
		r := uf.find(int32(g))
		id, ok := ids[r]
		if !ok {
			id = int32(len(ids))
			ids[r] = id
		}
		comp[g] = id
	}
	return comp
}

// improve is the local-improvement pass described above pack.
func (m *model) improve(wave []int) {
	passes := m.c.ImprovementPasses
	if passes < 0 {
		return
	}
	ng := len(m.groups)
	nw := 0
	for _, w := range wave {
		nw = max(nw, w)
	}
	hosts := make([]int, nw+1)
	bytes := make([]int64, nw+1)
	count := make([]int, nw+1)
	prodN := make([]int, nw+1)
	for g, w := range wave {
		if w > 0 {
			hosts[w] += len(m.groups[g].hosts)
			bytes[w] += m.groups[g].bytes
			count[w]++
			if m.groups[g].prod && !m.groups[g].shared {
				prodN[w]++
			}
		}
	}
	m.improvedTo = make([]i18n.Msg, ng)
	separate := on(m.c.WaveRules.SeparateProduction)
	devFirst := on(m.c.WaveRules.DevTestFirst)
	firstProd := 0 // first wave holding production (dev/test-first boundary)
	for w := 1; w <= nw; w++ {
		if prodN[w] > 0 {
			firstProd = w
			break
		}
	}
	_ = firstProd
	// classOK: g may join wave w (leaving out group out, if any) without
	// mixing production and non-production.
	sharedN := make([]int, nw+1)
	for g, w := range wave {
		if w > 0 && m.groups[g].shared {
			sharedN[w]++
		}
	}
	classOK := func(g, w, out int) bool {
		if !separate || m.groups[g].shared {
			return true
		}
		p, n := prodN[w], count[w]-prodN[w]-sharedN[w]
		if out >= 0 && !m.groups[out].shared {
			if m.groups[out].prod {
				p--
			} else {
				n--
			}
		}
		if m.groups[g].prod {
			return n == 0
		}
		return p == 0
	}
	pilot := m.c.Pilot.Hosts > 0
	capH := func(w int) int {
		if pilot && w == 1 {
			return m.pilotCap()
		}
		return m.waveCap()
	}
	type ww struct {
		w   int
		wgt int64
	}
	members := make([][]int32, nw+1)
	for g, w := range wave {
		if w > 0 {
			members[w] = append(members[w], int32(g))
		}
	}
	bounds := func(g int) (int, int) {
		lb, ub := m.baseWave(m.groups[g]), nw
		if devFirst && firstProd > 0 && !m.groups[g].shared {
			if m.groups[g].prod {
				lb = max(lb, firstProd)
			} else if !m.devTestWaived[g] {
				ub = min(ub, firstProd-1)
			}
		}
		for _, p := range m.gpred[g] {
			if pw := wave[p.g]; pw > 0 {
				lb = max(lb, pw+p.lag)
			}
		}
		for _, s := range m.gsucc[g] {
			if sw := wave[s.g]; sw > 0 {
				ub = min(ub, sw-s.lag)
			}
		}
		return lb, ub
	}
	weightTo := func(g, w int) int64 {
		var sum int64
		lo := m.gadj.off[g]
		for k, h := range m.gadj.out(g) {
			if wave[h] == w {
				sum += m.gadj.w[int(lo)+k]
			}
		}
		return sum
	}
	related := func(g, h int) bool {
		if _, ok := slices.BinarySearch(m.gadj.out(g), int32(h)); ok {
			return true
		}
		for _, p := range m.gpred[g] {
			if int(p.g) == h {
				return true
			}
		}
		for _, s := range m.gsucc[g] {
			if int(s.g) == h {
				return true
			}
		}
		return false
	}
	fitsAfter := func(w int, out, in int) bool {
		if c := capH(w); c > 0 && hosts[w]-len(m.groups[out].hosts)+len(m.groups[in].hosts) > c {
			return false
		}
		if c := int64(m.c.MaxBytesPerWave); c > 0 && bytes[w]-m.groups[out].bytes+m.groups[in].bytes > c {
			return false
		}
		return true
	}
	relocate := func(g, from, to int) {
		gr := m.groups[g]
		hosts[from] -= len(gr.hosts)
		bytes[from] -= gr.bytes
		count[from]--
		hosts[to] += len(gr.hosts)
		bytes[to] += gr.bytes
		count[to]++
		wave[g] = to
		if gr.prod && !gr.shared {
			prodN[from]--
			prodN[to]++
		}
		if gr.shared {
			sharedN[from]--
			sharedN[to]++
		}
		list := members[from]
		for i, x := range list {
			if int(x) == g {
				list[i] = list[len(list)-1]
				members[from] = list[:len(list)-1]
				break
			}
		}
		members[to] = append(members[to], int32(g))
	}
	var scratch []ww
	for pass := 0; pass < passes; pass++ {
		moved := 0
		for g := 0; g < ng; g++ {
			gr := m.groups[g]
			cur := wave[g]
			if cur == 0 || gr.pin > 0 {
				continue
			}
			lb, ub := bounds(g)
			scratch = scratch[:0]
			var wcur int64
			lo := m.gadj.off[g]
			for k, h := range m.gadj.out(g) {
				hw := wave[h]
				if hw == 0 {
					continue
				}
				wt := m.gadj.w[int(lo)+k]
				if hw == cur {
					wcur += wt
				} else if hw >= lb && hw <= ub {
					scratch = append(scratch, ww{hw, wt})
				}
			}
			if len(scratch) == 0 {
				continue
			}
			slices.SortFunc(scratch, func(a, b ww) int { return a.w - b.w })
			best, bestGain := 0, int64(0)
			full, fullGain := 0, int64(0) // best target that only lacks room
			for i := 0; i < len(scratch); {
				j, sum := i, int64(0)
				for ; j < len(scratch) && scratch[j].w == scratch[i].w; j++ {
					sum += scratch[j].wgt
				}
				x := scratch[i].w
				i = j
				gain := sum - wcur
				if gain <= bestGain || m.apartClash(g, x, wave) || !classOK(g, x, -1) {
					continue
				}
				if (capH(x) > 0 && hosts[x]+len(gr.hosts) > capH(x)) || (m.c.MaxBytesPerWave > 0 && bytes[x]+gr.bytes > int64(m.c.MaxBytesPerWave)) {
					if gain > fullGain {
						full, fullGain = x, gain
					}
					continue
				}
				best, bestGain = x, gain
			}
			if best != 0 && count[cur] > 1 {
				relocate(g, cur, best)
				m.improvedTo[g] = m.heaviestIn(g, best, wave)
				moved++
				continue
			}
			if full == 0 {
				continue
			}
			// Swap with the group of the full wave that loses least by
			// coming to this one (Kernighan–Lin's exchange, one pair).
			bestH, bestTotal := -1, int64(0)
			for k, h32 := range members[full] {
				if k == 64 {
					break // bound the work per group; waves are small
				}
				h := int(h32)
				if m.groups[h].pin > 0 || related(g, h) || !fitsAfter(full, h, g) || !fitsAfter(cur, g, h) || !classOK(g, full, h) || !classOK(h, cur, g) {
					continue
				}
				hl, hu := bounds(h)
				if cur < hl || cur > hu || m.apartClash(h, cur, wave) {
					continue
				}
				if total := fullGain + weightTo(h, cur) - weightTo(h, full); total > bestTotal {
					bestH, bestTotal = h, total
				}
			}
			if bestH >= 0 {
				relocate(g, cur, full)
				relocate(bestH, full, cur)
				m.improvedTo[g] = m.heaviestIn(g, full, wave)
				m.improvedTo[bestH] = i18n.M("plan.member.swapped", "group", m.groups[g].name)
				moved++
			}
		}
		if moved == 0 {
			return
		}
	}
}

func (m *model) apartClash(g int, w int, wave []int) bool {
	for _, h := range m.groups[g].hosts {
		for _, o := range m.apartOf[h] {
			if og := m.hostGroup[o]; int(og) != g && wave[og] == w {
				return true
			}
		}
	}
	return false
}

func joinSemi(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}

// pilotCap is the pilot wave's host cap: the pilot size, never above the
// general wave cap.
func (m *model) pilotCap() int {
	if mh := m.waveCap(); mh > 0 && mh < m.c.Pilot.Hosts {
		return mh
	}
	return m.c.Pilot.Hosts
}

// heaviestIn names the group of wave w that g is most connected to.
func (m *model) heaviestIn(g, w int, wave []int) i18n.Msg {
	var nb int32 = -1
	var nbw int64
	lo := m.gadj.off[g]
	for k, h := range m.gadj.out(g) {
		if wave[h] == w && m.gadj.w[int(lo)+k] > nbw {
			nb, nbw = h, m.gadj.w[int(lo)+k]
		}
	}
	if nb < 0 {
		return i18n.Msg{}
	}
	return i18n.M("plan.member.joins", "group", m.groups[nb].name, "n", nbw)
}
