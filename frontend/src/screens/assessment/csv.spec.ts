import { describe, expect, it } from 'vitest'
import { safeCell, toCSV } from './csv'

describe('toCSV', () => {
  it('quotes commas, quotes and newlines and keeps Chinese text', () => {
    const out = toCSV(['host', 'reasons'], [['db-1', 'kernel 2.6, "old"'], ['应用-2', 'line1\nline2'], ['x', null]])
    expect(out).toBe('\ufeffhost,reasons\r\ndb-1,"kernel 2.6, ""old"""\r\n应用-2,"line1\nline2"\r\nx,\r\n')
  })

  it('escapes every cell a spreadsheet would run as a formula (OWASP CSV injection)', () => {
    const out = toCSV(['host', 'reasons', 'cost'], [
      ["=cmd|' /C calc'!A0", '+SUM(A1)', -12.5],
      ['@SUM(1)', '-2+3+cmd|\' /C calc\'!A0', 3],
      ['\t=1', '\r=1', '-5'],
    ])
    expect(out).toBe(
      '\ufeffhost,reasons,cost\r\n' +
        "'=cmd|' /C calc'!A0,'+SUM(A1),-12.5\r\n" +
        "'@SUM(1),'-2+3+cmd|' /C calc'!A0,3\r\n" +
        "'\t=1,\"'\r=1\",-5\r\n",
    )
  })

  it('leaves numbers and ordinary text alone', () => {
    for (const v of ['web01', 'a=b', '-5', '+1.5e3', '']) expect(safeCell(v)).toBe(v)
    expect(safeCell(-3)).toBe('-3')
    expect(safeCell(null)).toBe('')
  })
})
