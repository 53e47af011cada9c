// States in which a migration moves by itself, so the list keeps refreshing.
export const activeStates = new Set(['pending', 'preparing', 'initial_sync', 'syncing', 'cutting_over', 'rolling_back'])

export type TagType = 'success' | 'warning' | 'danger' | 'info' | 'primary'

export function stateTag(state: string): TagType {
  if (state === 'cut_over') return 'success'
  if (state === 'failed') return 'danger'
  if (state === 'rolled_back' || state === 'pending') return 'info'
  if (state === 'test_launched' || state === 'cutover_ready') return 'warning'
  return 'primary'
}
