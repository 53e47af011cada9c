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

type T = (k: string, p?: Record<string, unknown>) => string

// domainText translates a domain message; an unknown code shows itself.
// A parameter may itself be a message ({code, params}) or a list of them
// (a plan reason names the rule behind it): they are translated first, a
// list joined by ", " (as i18n.Msg.Text does on the server).
export function domainText(t: T, te: (k: string) => boolean, m: DomainMessage): string {
  const key = `domain.${m.code}`
  if (!te(key)) return m.code
  const ps: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(m.params ?? {})) ps[k] = domainParam(t, te, v)
  return t(key, ps)
}

function domainParam(t: T, te: (k: string) => boolean, v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => domainParam(t, te, x)).join(', ')
  if (v && typeof v === 'object' && typeof (v as DomainMessage).code === 'string') return domainText(t, te, v as DomainMessage)
  return v
}

// reasonText renders a plan member's reasons ("; " between the parts), or
// the stored English reason when the member has none (plans made before
// reasons were codes).
export function reasonText(t: T, te: (k: string) => boolean, reasons: readonly DomainMessage[] | null | undefined, fallback: string): string {
  return reasons?.length ? reasons.map((r) => domainText(t, te, r)).join('; ') : fallback
}
