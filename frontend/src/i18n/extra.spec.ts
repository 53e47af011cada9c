import { describe, expect, it } from 'vitest'
import extra from './extra'
import enFlat from '../../../i18n/en.json'
import zhFlat from '../../../i18n/zh-CN.json'
import { domainText, nest } from './domain'

function keys(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' ? keys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]))
}
const ph = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()

describe('deliverable and domain messages', () => {
  it('have the same keys and placeholders in both languages', () => {
    expect(keys(extra['zh-CN']).sort()).toEqual(keys(extra.en).sort())
    expect(Object.keys(zhFlat).sort()).toEqual(Object.keys(enFlat).sort())
    for (const [k, v] of Object.entries(enFlat as Record<string, string>)) expect(ph((zhFlat as Record<string, string>)[k]), k).toEqual(ph(v))
  })
  it('translate a domain code with its parameters, and show an unknown code as is', () => {
    const tree = nest(zhFlat as Record<string, string>) as any
    const t = (k: string, p?: Record<string, unknown>) => String(k.split('.').slice(1).reduce((a: any, x) => a?.[x], tree)).replace(/\{(\w+)\}/g, (_, n) => String(p?.[n]))
    const te = (k: string) => typeof k.split('.').slice(1).reduce((a: any, x) => a?.[x], tree) === 'string'
    expect(domainText(t, te, { code: 'assess.action.eol', params: { os: 'CentOS 7', date: '2024-06-30' } })).toBe('CentOS 7 已于 2024-06-30 终止支持：不再有安全更新，请规划升级')
    expect(domainText(t, te, { code: 'assess.nothing' })).toBe('assess.nothing')
  })
})
