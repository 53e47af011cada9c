import { describe, expect, it } from 'vitest'
import { crossingPercent } from './metrics'

describe('crossingPercent', () => {
  it('is between 0 and 100 for what the planner stores', () => {
    expect(crossingPercent(14.3)).toBe(14.3)
    for (const v of [0, 0.01, 14.3, 99.99, 100, undefined, null, 'x', -3]) {
      const p = crossingPercent(v)
      expect(p).toBeGreaterThanOrEqual(0)
      expect(p).toBeLessThanOrEqual(100)
    }
  })
})
