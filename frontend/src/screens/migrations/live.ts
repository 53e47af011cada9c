// Live progress: events of the migrationProgress subscription laid over the
// rows of the list query.

export type Progress = {
  id: string
  state: string
  allowedActions: string[]
  latestRecoveryPoint?: { id: string } | null
  [field: string]: unknown
}

// needsRefetch says whether an event changes more than the numbers: a new
// state, recovery point or set of actions also changes the row's recovery
// points and launches, which only the list query reads.
export function needsRefetch(row: Progress, ev: Progress): boolean {
  return row.state !== ev.state ||
    (row.latestRecoveryPoint?.id ?? null) !== (ev.latestRecoveryPoint?.id ?? null) ||
    row.allowedActions.join(',') !== ev.allowedActions.join(',')
}

// overlay returns the rows with each one's newest event merged in, unless
// the list query read the row later than the event (updatedAt).
export function overlay<R extends { id: string; updatedAt?: unknown }>(rows: R[], live: ReadonlyMap<string, Partial<R>>): R[] {
  return rows.map((r) => {
    const ev = live.get(r.id)
    if (!ev) return r
    if (Date.parse(String(ev.updatedAt)) < Date.parse(String(r.updatedAt))) return r
    return { ...r, ...ev }
  })
}

// idsKey names a set of ids independently of order, to resubscribe only when
// the listed migrations change.
export function idsKey(ids: string[]): string {
  return [...ids].sort().join(',')
}
