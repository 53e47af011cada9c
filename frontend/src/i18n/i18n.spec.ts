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
