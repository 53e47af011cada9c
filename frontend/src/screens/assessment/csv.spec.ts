import { describe, expect, it } from 'vitest'
import { toCSV } from './csv'

describe('toCSV', () => {
  it('quotes commas, quotes and newlines and keeps Chinese text', () => {
    const out = toCSV(['host', 'reasons'], [['db-1', 'kernel 2.6, "old"'], ['应用-2', 'line1\nline2'], ['x', null]])
    expect(out).toBe('\ufeffhost,reasons\r\ndb-1,"kernel 2.6, ""old"""\r\n应用-2,"line1\nline2"\r\nx,\r\n')
  })
})
