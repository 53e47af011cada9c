// Pure logic of the topology screen, kept apart from Cytoscape so it can be
// unit-tested: the wave-block layout, the wave palette and the label
// decluttering. The graph itself is aggregated on the server (Query.topology).

export interface TopoNode {
  key: string
  kind: string
  label: string
  refId?: string | null
  hosts: number
  environment: string
  wave?: number | null
  waves: number
  members: number
  cycles: number
  suggested?: number
}

export interface TopoEdge {
  source: string
  target: string
  connections: number
  weight: number
  bytes: number
  crossWeight: number
  ports: number[]
  inCycle: boolean
}

export interface Point { x: number; y: number }
export interface Block { wave: number; x: number; y: number; w: number; h: number; nodes: string[] }

// Cell of one node inside a wave block, in model units: wide enough for a
// label of about 18 characters at the default zoom's font size.
export const CELL_W = 150
export const CELL_H = 64
const GAP = 60

// waveBlocks lays nodes out as one block per wave (wave 0 = in no wave,
// last), each a small grid, heaviest node first; the blocks are packed in
// rows in wave order, the rows about as wide as the whole is tall times
// aspect. Nothing overlaps by construction, and the cost is linear.
export function waveBlocks(nodes: TopoNode[], aspect = 1.6): { positions: Map<string, Point>; blocks: Block[] } {
  const byWave = new Map<number, TopoNode[]>()
  for (const n of nodes) {
    const w = n.wave ?? 0
    let list = byWave.get(w)
    if (!list) byWave.set(w, (list = []))
    list.push(n)
  }
  const waves = [...byWave.keys()].sort((a, b) => (a === 0 ? 1 : b === 0 ? -1 : a - b))
  const blocks: Block[] = waves.map((wave) => {
    const list = byWave.get(wave)!.sort((a, b) => b.hosts - a.hosts || a.label.localeCompare(b.label) || a.key.localeCompare(b.key))
    const cols = Math.max(1, Math.ceil(Math.sqrt(list.length / 2)))
    const rows = Math.ceil(list.length / cols)
    return { wave, x: 0, y: 0, w: cols * CELL_W, h: rows * CELL_H, nodes: list.map((n) => n.key) }
  })
  const area = blocks.reduce((s, b) => s + (b.w + GAP) * (b.h + GAP), 0)
  const rowWidth = Math.max(Math.sqrt(area * aspect), ...blocks.map((b) => b.w))
  let x = 0
  let y = 0
  let rowH = 0
  for (const b of blocks) {
    if (x > 0 && x + b.w > rowWidth) {
      x = 0
      y += rowH + GAP
      rowH = 0
    }
    b.x = x
    b.y = y
    x += b.w + GAP
    rowH = Math.max(rowH, b.h)
  }
  const positions = new Map<string, Point>()
  for (const b of blocks) {
    const cols = Math.max(1, Math.round(b.w / CELL_W))
    b.nodes.forEach((key, i) => {
      positions.set(key, { x: b.x + (i % cols) * CELL_W + CELL_W / 2, y: b.y + Math.floor(i / cols) * CELL_H + CELL_H / 2 })
    })
  }
  return { positions, blocks }
}

// Stops of a sequential palette (viridis): early waves dark blue, late
// waves yellow; red stays free for cycles.
const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]

// waveColor is the colour of wave w of n (grey for no wave).
export function waveColor(w: number | null | undefined, n: number): string {
  if (!w || w < 1) return '#c0c4cc'
  const t = n <= 1 ? 0 : Math.min(1, (w - 1) / (n - 1))
  const pos = t * (stops.length - 1)
  const i = Math.min(stops.length - 2, Math.floor(pos))
  const f = pos - i
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f))
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`
}

export interface LabelBox { key: string; x1: number; y1: number; x2: number; y2: number; weight: number }

// declutter picks the labels to show so that no two shown labels overlap,
// nor a label another node's body (obstacles, by the node's key): heaviest
// first, each kept when it overlaps nothing kept before it. A uniform grid
// makes it linear in the labels for boxes of similar size.
export function declutter(boxes: LabelBox[], pad = 2, obstacles: LabelBox[] = []): Set<string> {
  const shown = new Set<string>()
  const real = boxes.filter((b) => b.x2 > b.x1 && b.y2 > b.y1)
  if (real.length === 0) return shown
  const cell = Math.max(1, ...real.map((b) => Math.max(b.x2 - b.x1, b.y2 - b.y1))) + pad
  const grid = new Map<string, LabelBox[]>()
  const bodies = new Map<string, LabelBox[]>()
  for (const o of obstacles) {
    if (!(o.x2 > o.x1 && o.y2 > o.y1)) continue
    for (let i = Math.floor(o.x1 / cell); i <= Math.floor(o.x2 / cell); i++) {
      for (let j = Math.floor(o.y1 / cell); j <= Math.floor(o.y2 / cell); j++) {
        const k = `${i},${j}`
        let list = bodies.get(k)
        if (!list) bodies.set(k, (list = []))
        list.push(o)
      }
    }
  }
  const cellsOf = (b: LabelBox) => {
    const out: string[] = []
    for (let i = Math.floor((b.x1 - pad) / cell); i <= Math.floor((b.x2 + pad) / cell); i++) {
      for (let j = Math.floor((b.y1 - pad) / cell); j <= Math.floor((b.y2 + pad) / cell); j++) out.push(`${i},${j}`)
    }
    return out
  }
  const sorted = [...real].sort((a, b) => b.weight - a.weight || a.key.localeCompare(b.key))
  for (const b of sorted) {
    const cells = cellsOf(b)
    const clash = cells.some((c) => (grid.get(c) ?? []).some((o) => overlaps(o, b, pad)) || (bodies.get(c) ?? []).some((o) => o.key !== b.key && overlaps(o, b)))
    if (clash) continue
    shown.add(b.key)
    for (const c of cells) {
      let list = grid.get(c)
      if (!list) grid.set(c, (list = []))
      list.push(b)
    }
  }
  return shown
}

// overlaps reports whether two boxes come closer than pad.
export function overlaps(a: { x1: number; y1: number; x2: number; y2: number }, b: { x1: number; y1: number; x2: number; y2: number }, pad = 0): boolean {
  return a.x1 < b.x2 + pad && b.x1 < a.x2 + pad && a.y1 < b.y2 + pad && b.y1 < a.y2 + pad
}

// nodeSize grows with the square root of the hosts a node stands for.
export function nodeSize(hosts: number): number {
  return Math.min(56, 14 + 5 * Math.sqrt(Math.max(hosts, 1)))
}

// edgeWidth grows with the logarithm of the observed connection count.
export function edgeWidth(weight: number): number {
  return Math.min(8, 0.8 + Math.log10(Math.max(weight, 1)) * 0.9)
}
