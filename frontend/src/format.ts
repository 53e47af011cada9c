// Formatting helpers shared by several screens. Units stay in English
// abbreviations (KiB, GiB) which read the same in Chinese.

const binary = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

export function formatBytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '—'
  let v = Math.abs(n)
  let i = 0
  while (v >= 1024 && i < binary.length - 1) {
    v /= 1024
    i++
  }
  const s = i === 0 ? String(v) : String(Number(v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)))
  return `${n < 0 ? '-' : ''}${s} ${binary[i]}`
}

export function formatMiB(mib: number | null | undefined): string {
  return mib == null ? '—' : formatBytes(mib * 1024 * 1024)
}

// formatDuration renders seconds as the two largest units, e.g. "2 h 5 min".
export function formatDuration(seconds: number | null | undefined, t: (k: string, v: Record<string, unknown>) => string): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '—'
  const s = Math.round(seconds)
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const parts: string[] = []
  if (d) parts.push(t('units.days', { n: d }))
  if (h) parts.push(t('units.hours', { n: h }))
  if (m && parts.length < 2) parts.push(t('units.minutes', { n: m }))
  if (parts.length === 0) parts.push(t('units.seconds', { n: s % 60 }))
  return parts.slice(0, 2).join(' ')
}

export function formatTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  return d.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' })
}

export function formatMoney(v: number | null | undefined, locale: string): string {
  if (v == null || !Number.isFinite(v)) return '—'
  return new Intl.NumberFormat(locale, { style: 'currency', currency: 'USD', maximumFractionDigits: 0 }).format(v)
}

export function percent(done: number, total: number): number {
  if (!total || total <= 0) return 0
  return Math.max(0, Math.min(100, Math.round((done / total) * 1000) / 10))
}

// formatShare formats a fraction (0.143) as a percentage, once: "14.3 %".
// The API gives shares as fractions everywhere; nothing else multiplies them.
export function formatShare(fraction: number | null | undefined): string {
  const f = Number(fraction ?? 0)
  if (!Number.isFinite(f) || f <= 0) return '0 %'
  const p = f * 100
  return p < 10 ? `${p.toFixed(1)} %` : `${Math.round(p)} %`
}
