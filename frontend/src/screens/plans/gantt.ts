// Gantt rows for the wave calendar: replication from startsAt to cutoverAt
// (or endsAt), then the cutover window up to endsAt.

export interface GanttWave {
  id: string
  ordinal: number
  name: string
  startsAt?: string | null
  endsAt?: string | null
  cutoverAt?: string | null
}

export interface GanttBar {
  row: number
  label: string
  kind: 'replication' | 'cutover'
  start: number
  end: number
}

export function waveLabel(w: { ordinal: number; name: string }): string {
  return w.name || `#${w.ordinal}`
}

export function ganttBars(waves: GanttWave[]): { labels: string[]; bars: GanttBar[]; unscheduled: string[] } {
  const sorted = [...waves].sort((a, b) => a.ordinal - b.ordinal)
  const labels: string[] = []
  const bars: GanttBar[] = []
  const unscheduled: string[] = []
  for (const w of sorted) {
    const start = w.startsAt ? Date.parse(w.startsAt) : NaN
    const end = w.endsAt ? Date.parse(w.endsAt) : NaN
    if (Number.isNaN(start) || Number.isNaN(end) || end < start) {
      unscheduled.push(waveLabel(w))
      continue
    }
    const row = labels.length
    labels.push(waveLabel(w))
    const cut = w.cutoverAt ? Date.parse(w.cutoverAt) : NaN
    if (!Number.isNaN(cut) && cut > start && cut < end) {
      bars.push({ row, label: waveLabel(w), kind: 'replication', start, end: cut })
      bars.push({ row, label: waveLabel(w), kind: 'cutover', start: cut, end })
    } else {
      bars.push({ row, label: waveLabel(w), kind: 'replication', start, end })
    }
  }
  return { labels, bars, unscheduled }
}
