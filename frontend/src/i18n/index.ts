import { createI18n } from 'vue-i18n'
import en from './en'
import zhCN from './zh-CN'
import extra from './extra'
import { domainEn, domainZh } from './domain'

export type Locale = 'en' | 'zh-CN'
export const locales: { value: Locale; label: string }[] = [
  { value: 'en', label: 'English' },
  { value: 'zh-CN', label: '简体中文' },
]

const storageKey = 'ferry.locale'

// initialLocale prefers the saved choice, then the browser's language.
export function initialLocale(saved: string | null = localStorage.getItem(storageKey), nav = navigator.language): Locale {
  if (saved === 'en' || saved === 'zh-CN') return saved
  return nav.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en'
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: {
    en: { ...en, ...extra.en, domain: domainEn },
    'zh-CN': { ...zhCN, ...extra['zh-CN'], domain: domainZh },
  } as any,
  missingWarn: false,
  fallbackWarn: false,
})

// setLocale switches the UI language and remembers the choice.
export function setLocale(l: Locale): void {
  i18n.global.locale.value = l
  localStorage.setItem(storageKey, l)
  document.documentElement.lang = l
}
