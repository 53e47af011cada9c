import { describe, expect, it } from 'vitest'
import { ganttBars } from './gantt'

describe('ganttBars', () => {
  it('orders waves and splits replication from cutover', () => {
    const g = ganttBars([
      { id: 'b', ordinal: 2, name: '', startsAt: '2026-01-03T00:00:00Z', endsAt: '2026-01-05T00:00:00Z', cutoverAt: '2026-01-04T00:00:00Z' },
      { id: 'a', ordinal: 1, name: 'Pilot', startsAt: '2026-01-01T00:00:00Z', endsAt: '2026-01-02T00:00:00Z' },
      { id: 'c', ordinal: 3, name: 'Late', startsAt: null, endsAt: null },
    ])
    expect(g.labels).toEqual(['Pilot', '#2'])
    expect(g.unscheduled).toEqual(['Late'])
    expect(g.bars.map((b) => [b.row, b.kind])).toEqual([[0, 'replication'], [1, 'replication'], [1, 'cutover']])
    expect(g.bars[2].start).toBe(Date.parse('2026-01-04T00:00:00Z'))
  })

  it('treats an end before the start as unscheduled', () => {
    expect(ganttBars([{ id: 'x', ordinal: 1, name: 'x', startsAt: '2026-01-02T00:00:00Z', endsAt: '2026-01-01T00:00:00Z' }]).unscheduled).toEqual(['x'])
  })
})
