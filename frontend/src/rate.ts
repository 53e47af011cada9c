// Rates in Ferry's one vocabulary (the Go side is ferry.Rate in rate.go):
// formatRate writes a rate exactly as the server's Rate.String does, so a
// limit reads the same in the UI, the API and plan.yaml; testdata/rates.json
// holds the cases both sides are tested against. Parsing stays on the
// server (ferry.ParseRate): the UI sends what the user typed and shows the
// server's error.

// Units as bytes per second, largest first: bits as "bps", bytes in binary
// units (the spellings every reader Ferry ever had reads alike).
const units: [string, number][] = [
  ['TiB/s', 2 ** 40], ['Tbps', 1e12 / 8], ['GiB/s', 2 ** 30], ['Gbps', 1e9 / 8],
  ['MiB/s', 2 ** 20], ['Mbps', 1e6 / 8], ['KiB/s', 2 ** 10], ['kbps', 1e3 / 8], ['bps', 1 / 8],
]

// Decimal digits of a positive number without exponent (JS switches to
// exponents from 1e21; Ferry's rates stop at 8e15 bits).
function plain(v: number): string {
  const s = String(v)
  return s.includes('e') ? v.toFixed(20).replace(/\.?0+$/, '') : s
}

function significant(s: string): number {
  let d = s.replace('.', '').replace(/^0+/, '')
  if (!s.includes('.')) d = d.replace(/0+$/, '')
  return d.length
}

// formatRate writes bytesPerSecond as the server does: "unlimited" (null
// or Infinity), "0", or the unit needing the fewest digits ("8Mbps",
// "20MiB/s", "12.5Mbps"), bits on a tie.
export function formatRate(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond == null || bytesPerSecond === Infinity) return 'unlimited'
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return '—'
  if (bytesPerSecond === 0) return '0'
  let best = ''
  let bestDigits = 0
  for (const [name, mult] of units) {
    const v = bytesPerSecond / mult
    if (v < 1) continue
    const s = plain(v)
    if (Number(s) * mult !== bytesPerSecond) continue
    const d = significant(s)
    if (best === '' || d < bestDigits) {
      best = s + name
      bestDigits = d
    }
  }
  return best || plain(bytesPerSecond * 8) + 'bps'
}

// Display units of a measured rate, by family, largest first.
const families: Record<'bytes' | 'bits', [string, number][]> = {
  bytes: [['TiB/s', 2 ** 40], ['GiB/s', 2 ** 30], ['MiB/s', 2 ** 20], ['KiB/s', 2 ** 10], ['B/s', 1]],
  bits: [['Tbps', 1e12 / 8], ['Gbps', 1e9 / 8], ['Mbps', 1e6 / 8], ['kbps', 1e3 / 8], ['bps', 1 / 8]],
}

// formatMeasuredRate writes a measured rate to three significant digits in
// the largest unit of its family that reads at least 1 (bytes by default,
// as the wire rate is reported; bits to sit next to a limit given in
// bits): "15.9MiB/s", "133Mbps". A rate formatRate writes in three digits
// or fewer, in that family, comes out as formatRate writes it.
export function formatMeasuredRate(bytesPerSecond: number | null | undefined, family: 'bytes' | 'bits' = 'bytes'): string {
  if (bytesPerSecond == null || !Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return '—'
  if (bytesPerSecond === 0) return '0'
  const exact = formatRate(bytesPerSecond)
  if (rateFamily(exact) === family && significant(exact.replace(/[^0-9.]/g, '')) <= 3) return exact
  const fam = families[family]
  const [name, mult] = fam.find(([, m]) => bytesPerSecond / m >= 1) ?? fam[fam.length - 1]
  return `${Number((bytesPerSecond / mult).toPrecision(3))}${name}`
}

// rateFamily says which family a written rate is in.
export function rateFamily(text: string | null | undefined): 'bytes' | 'bits' {
  return text && /bps$/.test(text) ? 'bits' : 'bytes'
}
