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

// formatDuration renders seconds sanely: two adjacent units below a week
// ("2 h 5 min", "3 d 4 h"), whole days below a year ("657 d"), years
// beyond ("1.8 years"); never "657 d 54 min".
export function formatDuration(seconds: number | null | undefined, t: (k: string, v: Record<string, unknown>) => string): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '—'
  const s = Math.round(seconds)
  if (s >= 365 * 86400) return t('deliver.years', { n: Math.round((s / (365 * 86400)) * 10) / 10 })
  if (s >= 7 * 86400) return t('units.days', { n: Math.round(s / 86400) })
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d) return h ? `${t('units.days', { n: d })} ${t('units.hours', { n: h })}` : t('units.days', { n: d })
  if (h) return m ? `${t('units.hours', { n: h })} ${t('units.minutes', { n: m })}` : t('units.hours', { n: h })
  if (m) return t('units.minutes', { n: m })
  return t('units.seconds', { n: s })
}

export function formatTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  return d.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' })
}

export function formatMoney(v: number | null | undefined, locale: string, currency = 'USD'): string {
  if (v == null || !Number.isFinite(v)) return '—'
  return new Intl.NumberFormat(locale, { style: 'currency', currency: currency || 'USD', maximumFractionDigits: 0 }).format(v)
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
