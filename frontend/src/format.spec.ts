import { describe, expect, it } from 'vitest'
import { formatBytes, formatDuration, formatMiB, percent } from './format'

const t = (k: string, v: Record<string, unknown>) => `${v.n}${k.split('.')[1][0]}`

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [8 * 1024 ** 3, '8 GiB'],
    [123.4 * 1024 ** 3, '123 GiB'],
    [12.34 * 1024 ** 4, '12.3 TiB'],
    [-2048, '-2 KiB'],
  ])('%d → %s', (n, want) => expect(formatBytes(n)).toBe(want))

  it('shows a dash for missing values', () => {
    expect(formatBytes(null)).toBe('—')
    expect(formatBytes(Number.NaN)).toBe('—')
    expect(formatMiB(undefined)).toBe('—')
    expect(formatMiB(8192)).toBe('8 GiB')
  })
})

describe('formatDuration', () => {
  it('keeps the two largest units', () => {
    expect(formatDuration(45, t)).toBe('45s')
    expect(formatDuration(3 * 3600 + 5 * 60 + 7, t)).toBe('3h 5m')
    expect(formatDuration(2 * 86400 + 3600 + 60, t)).toBe('2d 1h')
    expect(formatDuration(-1, t)).toBe('—')
  })

  it('never skips a unit: whole days past a week, years past a year', () => {
    // The consultant saw "657 d 54 min" for a 657-day transfer.
    expect(formatDuration(657 * 86400 + 54 * 60, t)).toBe('1.8y')
    expect(formatDuration(200 * 86400 + 54 * 60, t)).toBe('200d')
    expect(formatDuration(2 * 86400 + 54 * 60, t)).toBe('2d')
    expect(formatDuration(3600 + 7, t)).toBe('1h')
    for (const s of [61, 3599, 86400 + 59, 6 * 86400 + 3600 * 23 + 60 * 59, 10 ** 9]) {
      expect(formatDuration(s, t).split(' ').length, String(s)).toBeLessThanOrEqual(2)
    }
  })
})

describe('percent', () => {
  it('clamps and guards against a zero total', () => {
    expect(percent(5, 0)).toBe(0)
    expect(percent(1, 3)).toBe(33.3)
    expect(percent(7, 5)).toBe(100)
  })
})

describe('formatShare', () => {
  it('formats a fraction once as a percentage', async () => {
    const { formatShare } = await import('./format')
    expect(formatShare(0.143)).toBe('14 %')
    expect(formatShare(0.0143)).toBe('1.4 %')
    expect(formatShare(1)).toBe('100 %')
    expect(formatShare(0)).toBe('0 %')
    expect(formatShare(undefined)).toBe('0 %')
  })
})
