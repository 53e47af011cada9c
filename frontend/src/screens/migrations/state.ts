// States in which a migration moves by itself, so the list keeps refreshing.
export const activeStates = new Set(['pending', 'preparing', 'initial_sync', 'syncing', 'test_launched', 'cutting_over', 'rolling_back'])

export type TagType = 'success' | 'warning' | 'danger' | 'info' | 'primary'

export function stateTag(state: string): TagType {
  if (state === 'cut_over') return 'success'
  if (state === 'failed') return 'danger'
  if (state === 'rolled_back' || state === 'pending') return 'info'
  if (state === 'test_launched' || state === 'cutover_ready') return 'warning'
  return 'primary'
}

// Migrations that block a new one for the same host (the server refuses it too).
const finished = new Set(['rolled_back', 'failed'])

export function blockingMigration(migrations: { id: string; state: string }[] | null | undefined): { id: string; state: string } | undefined {
  return (migrations ?? []).find((m) => !finished.has(m.state))
}

// wizardProblem says why a host cannot be migrated yet, or '' when it can.
export function wizardProblem(h: { disks?: { sizeBytes: number }[] | null; agent?: unknown; migrations?: { id: string; state: string }[] | null }): '' | 'noDisks' | 'noAgent' | 'busy' {
  if (blockingMigration(h.migrations)) return 'busy'
  if (!h.agent) return 'noAgent'
  if (!(h.disks ?? []).some((d) => d.sizeBytes > 0)) return 'noDisks'
  return ''
}
