// Domain texts (assessment findings, wave names) come from the server as
// codes with parameters; their templates live once, in ../../../i18n/*.json,
// which the Go report writers read too. They are mounted under `domain`.
import enFlat from '../../../i18n/en.json'
import zhFlat from '../../../i18n/zh-CN.json'

type Tree = { [k: string]: string | Tree }

// nest turns {"assess.action.dhcp": "…"} into {assess: {action: {dhcp: "…"}}}.
export function nest(flat: Record<string, string>): Tree {
  const out: Tree = {}
  for (const [code, text] of Object.entries(flat)) {
    const parts = code.split('.')
    let node = out
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Tree
    node[parts[parts.length - 1]] = text
  }
  return out
}

export const domainEn = nest(enFlat as Record<string, string>)
export const domainZh = nest(zhFlat as Record<string, string>)

export interface DomainMessage {
  code: string
  params?: Record<string, unknown> | null
}

// domainText translates a domain message; an unknown code shows itself.
export function domainText(t: (k: string, p?: Record<string, unknown>) => string, te: (k: string) => boolean, m: DomainMessage): string {
  const key = `domain.${m.code}`
  return te(key) ? t(key, (m.params ?? {}) as Record<string, unknown>) : m.code
}
