import { describe, expect, it } from 'vitest'
import { declutter, overlaps, waveBlocks, waveColor, CELL_W, CELL_H, type LabelBox, type TopoNode } from './graph'

const node = (key: string, wave: number | null, hosts = 1): TopoNode => ({
  key, kind: 'application', label: key, hosts, environment: 'production', wave, waves: wave ? 1 : 0, members: 1, cycles: 0,
})

describe('waveBlocks', () => {
  it('puts each wave in its own block, in wave order, no wave last, nothing overlapping', () => {
    const nodes = [node('a', 2, 40), node('b', 1), node('c', null), node('d', 2, 50), node('e', 1, 3)]
    for (let i = 0; i < 300; i++) nodes.push(node(`n${i}`, 1 + (i % 37), 1 + (i % 11)))
    const { positions, blocks } = waveBlocks(nodes)
    expect(blocks.map((b) => b.wave).slice(0, 3)).toEqual([1, 2, 3])
    expect(blocks[blocks.length - 1].wave).toBe(0)
    expect(positions.size).toBe(nodes.length)
    // The heaviest node of wave 2 comes first in its block.
    expect(blocks[1].nodes.slice(0, 2)).toEqual(['d', 'a'])
    for (let i = 0; i < blocks.length; i++) {
      for (let j = i + 1; j < blocks.length; j++) {
        const a = blocks[i]
        const b = blocks[j]
        expect(overlaps({ x1: a.x, y1: a.y, x2: a.x + a.w, y2: a.y + a.h }, { x1: b.x, y1: b.y, x2: b.x + b.w, y2: b.y + b.h })).toBe(false)
      }
    }
    const cells = new Set([...positions.values()].map((p) => `${Math.floor(p.x / CELL_W)},${Math.floor(p.y / CELL_H)}`))
    expect(cells.size).toBe(nodes.length)
  })

  it('lays 4,000 nodes in 200 waves out quickly enough to matter not', () => {
    const nodes = Array.from({ length: 4000 }, (_, i) => node(`n${i}`, i % 201, i % 13))
    const { positions, blocks } = waveBlocks(nodes)
    expect(positions.size).toBe(4000)
    expect(blocks).toHaveLength(201)
  })
})

describe('waveColor', () => {
  it('runs from the first to the last wave, grey for none', () => {
    expect(waveColor(null, 10)).toBe('#c0c4cc')
    expect(waveColor(1, 10)).toBe('#440154')
    expect(waveColor(10, 10)).toBe('#fde725')
    expect(waveColor(5, 10)).not.toBe(waveColor(6, 10))
  })
})

describe('declutter', () => {
  const box = (key: string, x: number, y: number, weight: number, w = 40, h = 10): LabelBox => ({ key, x1: x, y1: y, x2: x + w, y2: y + h, weight })

  it('keeps the heavier of two overlapping labels and every free one', () => {
    const shown = declutter([box('light', 0, 0, 1), box('heavy', 20, 5, 9), box('free', 200, 200, 1), box('empty', 5, 5, 99, 0, 0)])
    expect([...shown].sort()).toEqual(['free', 'heavy'])
  })

  it('hides a label over another node, not over its own', () => {
    const shown = declutter([box('a', 0, 0, 1), box('b', 100, 0, 1)], 2, [box('x', 10, 2, 0, 8, 8), box('b', 110, 2, 0, 8, 8)])
    expect([...shown]).toEqual(['b'])
  })

  it('never shows two overlapping labels', () => {
    const boxes: LabelBox[] = []
    for (let i = 0; i < 2000; i++) boxes.push(box(`b${i}`, (i * 37) % 900, (i * 53) % 600, i % 17, 30 + (i % 50), 12))
    const keep = declutter(boxes)
    const shown = boxes.filter((b) => keep.has(b.key))
    expect(shown.length).toBeGreaterThan(50)
    for (let i = 0; i < shown.length; i++) {
      for (let j = i + 1; j < shown.length; j++) expect(overlaps(shown[i], shown[j])).toBe(false)
    }
  })
})
