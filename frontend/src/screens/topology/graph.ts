// Pure graph logic for the topology screen: grouping, filtering and cycle
// detection, kept apart from Cytoscape so it can be unit-tested.

export interface TopoHost {
  id: string
  name: string
  environment: string
  application?: { id: string; name: string } | null
  waveMemberships?: ReadonlyArray<{ wave: { id: string; name: string; ordinal: number; plan: { id: string; name: string } } }> | null
}

export interface TopoConn {
  id: string
  srcHostID: string
  dstHostID?: string | null
  port: number
  protocol: string
  bytes: number
  count: number
}

export type GroupBy = 'application' | 'wave' | 'none'

export interface Elements {
  groups: { id: string; label: string }[]
  nodes: { id: string; label: string; parent?: string; environment: string; inCycle: boolean }[]
  edges: { id: string; source: string; target: string; label: string; weight: number; inCycle: boolean }[]
  cycles: string[][]
}

// stronglyConnected returns the strongly connected components with more than
// one member (Tarjan, iterative so deep graphs cannot overflow the stack).
export function stronglyConnected(nodes: string[], edges: [string, string][]): string[][] {
  const adj = new Map<string, string[]>()
  for (const n of nodes) adj.set(n, [])
  for (const [a, b] of edges) if (adj.has(a) && adj.has(b) && a !== b) adj.get(a)!.push(b)
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const out: string[][] = []
  for (const root of nodes) {
    if (idx.has(root)) continue
    const work: [string, number][] = [[root, 0]]
    idx.set(root, index)
    low.set(root, index++)
    stack.push(root)
    onStack.add(root)
    while (work.length) {
      const top = work[work.length - 1]
      const [v, i] = top
      const next = adj.get(v)!
      if (i < next.length) {
        top[1]++
        const w = next[i]
        if (!idx.has(w)) {
          idx.set(w, index)
          low.set(w, index++)
          stack.push(w)
          onStack.add(w)
          work.push([w, 0])
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v)!, idx.get(w)!))
        }
        continue
      }
      work.pop()
      if (work.length) {
        const parent = work[work.length - 1][0]
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!))
      }
      if (low.get(v) === idx.get(v)) {
        const comp: string[] = []
        let w: string
        do {
          w = stack.pop()!
          onStack.delete(w)
          comp.push(w)
        } while (w !== v)
        if (comp.length > 1) out.push(comp)
      }
    }
  }
  return out
}

function groupOf(h: TopoHost, by: GroupBy): { id: string; label: string } | undefined {
  if (by === 'application' && h.application) return { id: `app:${h.application.id}`, label: h.application.name }
  if (by === 'wave') {
    const m = h.waveMemberships?.[0]
    if (m) return { id: `wave:${m.wave.id}`, label: `${m.wave.plan.name} · ${m.wave.name || `#${m.wave.ordinal}`}` }
  }
  return undefined
}

export interface Filters {
  groupBy: GroupBy
  ports: number[]
  applicationIds: string[]
  environments: string[]
}

// buildElements filters hosts and connections and returns what Cytoscape
// draws. Connections to external addresses are left out; parallel
// connections between two hosts are merged into one edge.
export function buildElements(hosts: TopoHost[], conns: TopoConn[], f: Filters): Elements {
  const keep = hosts.filter((h) =>
    (f.environments.length === 0 || f.environments.includes(h.environment)) &&
    (f.applicationIds.length === 0 || (h.application && f.applicationIds.includes(h.application.id))),
  )
  const ids = new Set(keep.map((h) => h.id))
  const merged = new Map<string, { source: string; target: string; ports: Set<number>; bytes: number }>()
  for (const c of conns) {
    if (!c.dstHostID || !ids.has(c.srcHostID) || !ids.has(c.dstHostID) || c.srcHostID === c.dstHostID) continue
    if (f.ports.length && !f.ports.includes(c.port)) continue
    const key = `${c.srcHostID}>${c.dstHostID}`
    const e = merged.get(key) ?? { source: c.srcHostID, target: c.dstHostID, ports: new Set<number>(), bytes: 0 }
    e.ports.add(c.port)
    e.bytes += c.bytes
    merged.set(key, e)
  }
  const cycles = stronglyConnected([...ids], [...merged.values()].map((e) => [e.source, e.target]))
  const comp = new Map<string, number>()
  cycles.forEach((c, i) => c.forEach((n) => comp.set(n, i)))
  const groups = new Map<string, string>()
  const nodes = keep.map((h) => {
    const g = groupOf(h, f.groupBy)
    if (g) groups.set(g.id, g.label)
    return { id: h.id, label: h.name, parent: g?.id, environment: h.environment, inCycle: comp.has(h.id) }
  })
  const edges = [...merged.entries()].map(([key, e]) => ({
    id: key,
    source: e.source,
    target: e.target,
    label: [...e.ports].sort((a, b) => a - b).join(','),
    weight: e.bytes,
    inCycle: comp.has(e.source) && comp.get(e.source) === comp.get(e.target),
  }))
  return { groups: [...groups].map(([id, label]) => ({ id, label })), nodes, edges, cycles }
}

// parsePorts reads "22, 443 5432" into numbers, ignoring anything else.
export function parsePorts(s: string): number[] {
  return s.split(/[\s,]+/).map(Number).filter((n) => Number.isInteger(n) && n > 0 && n < 65536)
}
