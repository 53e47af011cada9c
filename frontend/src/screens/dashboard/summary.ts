import type { DashboardQuery as Q } from '@/gql/graphql'

export const migrationStates = [
  'pending', 'preparing', 'initial_sync', 'syncing', 'test_launched', 'cutover_ready',
  'cutting_over', 'cut_over', 'rolling_back', 'rolled_back', 'failed',
] as const

export interface Risk {
  key: string
  count: number
  level: 'danger' | 'warning'
  text?: string
}

// summarise turns the dashboard query into the numbers the cards show.
export function summarise(d: Q) {
  const byState: Record<string, number> = {}
  let bytesDone = 0
  let bytesTotal = 0
  for (const e of d.migrations.edges ?? []) {
    const m = e?.node
    if (!m) continue
    byState[m.state] = (byState[m.state] ?? 0) + 1
    bytesDone += m.bytesDone
    bytesTotal += m.bytesTotal
  }
  // null before any assessment: the screen says "not assessed", never $0.
  const assessedCost = d.costs.hosts > 0 && d.costs.assessedAt != null
  const costAsIs = assessedCost ? d.costs.monthlyCostAsIs : null
  const costRightSized = assessedCost ? d.costs.monthlyCostRightSized : null
  const storage = assessedCost ? d.costs.storageMonthly : null
  const waves: { id: string; plan: string; name: string; ordinal: number; pilot: boolean; status: string }[] = []
  const risks: Risk[] = []
  if (d.notReady.totalCount > 0) risks.push({ key: 'dashboard.notReady', count: d.notReady.totalCount, level: 'danger' })
  if ((byState.failed ?? 0) > 0) risks.push({ key: 'dashboard.failedMigrations', count: byState.failed, level: 'danger' })
  if (d.infeasiblePlans.totalCount > 0) risks.push({ key: 'dashboard.infeasiblePlans', count: d.infeasiblePlans.totalCount, level: 'warning' })
  for (const e of d.plans.edges ?? []) {
    const p = e?.node
    if (!p) continue
    for (const w of [...(p.waves ?? [])].sort((a, b) => a.ordinal - b.ordinal)) {
      waves.push({ id: w.id, plan: p.name, name: w.name || `#${w.ordinal}`, ordinal: w.ordinal, pilot: !!w.pilot, status: w.status })
    }
    // Planner problems (cycles, oversized groups) are user-readable sentences.
    for (const [i, text] of (p.problems ?? []).entries()) {
      risks.push({ key: `plan-${p.id}-${i}`, count: 1, level: 'warning', text: `${p.name}: ${text}` })
    }
  }
  const assessed = d.ready.totalCount + d.readyWithActions.totalCount + d.notReady.totalCount + d.unknownReadiness.totalCount
  return { assessed, byState, bytesDone, bytesTotal, costAsIs, costRightSized, storage, currency: d.costs.currency || 'USD', region: d.costs.region, waves, risks }
}
