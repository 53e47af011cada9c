import { describe, expect, it } from 'vitest'
import vectors from '../../testdata/rates.json'
import { formatMeasuredRate, formatRate, rateFamily } from './rate'

describe('formatRate', () => {
  // The same cases as Go's TestRateString (rate_test.go): a limit reads the
  // same in the UI as in the API and plan.yaml.
  for (const v of vectors.format) {
    it(`writes ${v.bytes_per_second ?? 'null'} B/s as ${v.text}`, () => {
      expect(formatRate(v.bytes_per_second)).toBe(v.text)
    })
  }
  it('marks what is not a rate', () => {
    expect(formatRate(-1)).toBe('—')
    expect(formatRate(NaN)).toBe('—')
    expect(formatRate(Infinity)).toBe('unlimited')
  })
})

describe('formatMeasuredRate', () => {
  it('rounds a measured rate to three digits in its family', () => {
    expect(formatMeasuredRate(16_650_000)).toBe('15.9MiB/s')
    expect(formatMeasuredRate(16_650_000, 'bits')).toBe('133Mbps')
    expect(formatMeasuredRate(500)).toBe('500B/s')
    expect(formatMeasuredRate(500, 'bits')).toBe('4kbps')
    expect(formatMeasuredRate(1234, 'bytes')).toBe('1.21KiB/s')
    expect(formatMeasuredRate(0)).toBe('0')
    expect(formatMeasuredRate(null)).toBe('—')
  })
  it('writes an exact rate as the server does', () => {
    expect(formatMeasuredRate(16 * 2 ** 20)).toBe('16MiB/s')
    expect(formatMeasuredRate(12_500_000, 'bits')).toBe('100Mbps')
  })
  it('tells the family of a written rate', () => {
    expect(rateFamily('100Mbps')).toBe('bits')
    expect(rateFamily('20MiB/s')).toBe('bytes')
    expect(rateFamily(null)).toBe('bytes')
  })
})
