import { describe, expect, it } from 'vitest'
import { summarise } from './summary'
import type { DashboardQuery } from '@/gql/graphql'

const count = (n: number) => ({ totalCount: n })

function data(over: Partial<DashboardQuery> = {}): DashboardQuery {
  return {
    hosts: count(10),
    ready: count(5), readyWithActions: count(2), notReady: count(3), unknownReadiness: count(0),
    costs: { hosts: 2, monthlyCostAsIs: 150, monthlyCostRightSized: 100, storageMonthly: 12, currency: 'USD', region: 'cn-hangzhou', assessedAt: '2026-12-01T00:00:00Z', priced: true, priceDate: '2026-11-15' },
    migrations: { totalCount: 3, edges: [
      { node: { id: 'm1', state: 'syncing', bytesDone: 10, bytesTotal: 100 } },
      { node: { id: 'm2', state: 'failed', bytesDone: 0, bytesTotal: 50 } },
      { node: { id: 'm3', state: 'syncing', bytesDone: 40, bytesTotal: 50 } },
    ] },
    plans: { totalCount: 1, edges: [{ node: { id: 'p', name: 'Plan A', status: 'ready', problems: ['cycle between db and app'], waves: [
      { id: 'w2', ordinal: 2, name: '', status: 'planned', startsAt: null, endsAt: null },
      { id: 'w1', ordinal: 1, name: 'Pilot', status: 'ready', startsAt: null, endsAt: null },
    ] } }] },
    infeasiblePlans: count(0),
    ...over,
  } as DashboardQuery
}

describe('summarise', () => {
  it('adds up migrations, bytes and costs', () => {
    const s = summarise(data())
    expect(s.byState).toEqual({ syncing: 2, failed: 1 })
    expect(s.bytesDone).toBe(50)
    expect(s.bytesTotal).toBe(200)
    expect(s.costAsIs).toBe(150)
    expect(s.costRightSized).toBe(100)
    expect(s.assessed).toBe(10)
  })

  it('takes the server\'s totals, and has no cost before any assessment (not $0)', () => {
    const none = summarise(data({ costs: { hosts: 0, monthlyCostAsIs: 0, monthlyCostRightSized: 0, storageMonthly: 0, currency: 'USD', region: '', assessedAt: null, priced: true, priceDate: '2026-11-15' } } as any))
    expect(none.costAsIs).toBeNull()
    expect(none.costRightSized).toBeNull()
    const big = summarise(data({ costs: { hosts: 20000, monthlyCostAsIs: 684634.5, monthlyCostRightSized: 342317, storageMonthly: 9000, currency: 'USD', region: 'cn-hangzhou', assessedAt: '2026-12-01T00:00:00Z', priced: true, priceDate: '2026-11-15' } } as any))
    expect(big.costRightSized).toBe(342317)
  })

  it('orders waves and lists risks, including planner problems', () => {
    const s = summarise(data())
    expect(s.waves.map((w) => w.name)).toEqual(['Pilot', '#2'])
    expect(s.risks.map((r) => r.key)).toEqual(['dashboard.notReady', 'dashboard.failedMigrations', 'plan-p-0'])
    expect(s.risks[2].text).toBe('Plan A: cycle between db and app')
  })
})
