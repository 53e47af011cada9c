import { describe, expect, it } from 'vitest'
import en from './en'
import zhCN from './zh-CN'
import { initialLocale } from './index'

function keys(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' ? keys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  )
}

function placeholders(s: string): string[] {
  return [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
}

describe('messages', () => {
  it('have the same keys in English and Chinese', () => {
    expect(keys(zhCN).sort()).toEqual(keys(en).sort())
  })

  it('are never empty and keep the same placeholders', () => {
    const get = (o: unknown, path: string) => path.split('.').reduce((a: any, k) => a?.[k], o) as string
    for (const k of keys(en)) {
      const e = get(en, k)
      const z = get(zhCN, k)
      expect(e.trim(), k).not.toBe('')
      expect(z.trim(), k).not.toBe('')
      expect(placeholders(z), k).toEqual(placeholders(e))
    }
  })
})

describe('initialLocale', () => {
  it('prefers the saved choice, then the browser language', () => {
    expect(initialLocale('zh-CN', 'en-US')).toBe('zh-CN')
    expect(initialLocale('en', 'zh-CN')).toBe('en')
    expect(initialLocale(null, 'zh-TW')).toBe('zh-CN')
    expect(initialLocale(null, 'de-DE')).toBe('en')
    expect(initialLocale('fr', 'en-GB')).toBe('en')
  })
})

describe('nested domain messages', () => {
  it('translates messages inside parameters, lists joined by commas', async () => {
    const { domainText, reasonText } = await import('./domain')
    const { i18n } = await import('./index')
    const g = i18n.global as unknown as { t: (k: string, p?: Record<string, unknown>) => string; te: (k: string) => boolean; locale: { value: string } | string }
    const why = { code: 'plan.member.latency_link', params: { calls: [{ code: 'plan.member.call', params: { host: 'nfs01', port: 2049 } }, { code: 'plan.member.call', params: { host: 'smtp01', port: 25 } }] } }
    const set = (l: string) => { if (typeof g.locale === 'string') (g as { locale: string }).locale = l; else g.locale.value = l }
    set('en')
    expect(domainText(g.t, g.te, why)).toBe('latency warning: calls nfs01 (port 2049), smtp01 (port 25) across the link until that moves')
    set('zh-CN')
    const zh = domainText(g.t, g.te, why)
    expect(zh).toContain('nfs01（端口 2049）')
    expect(zh).not.toContain('latency')
    expect(reasonText(g.t, g.te, [], 'stored')).toBe('stored')
    set('en')
  })
})
