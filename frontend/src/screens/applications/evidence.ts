// Pure helpers for the suggestions screen: evidence shown as a person reads it.

export interface PortWeight { port: number; weight: number }
export interface Member { id: string | number; name: string }

// cohesionPercent formats a fraction (0.93) once, as a whole percentage.
export function cohesionPercent(fraction: number | null | undefined): string {
  const f = Number(fraction ?? 0)
  return `${Math.round(Math.min(1, Math.max(0, f)) * 100)} %`
}

// portsText lists the binding ports, heaviest first: "5432 (12,000) · 8080 (3,100)".
export function portsText(ports: unknown, locale = 'en'): string {
  const ps = (Array.isArray(ports) ? ports : []) as PortWeight[]
  return ps.map((p) => `${p.port} (${Number(p.weight).toLocaleString(locale)})`).join(' · ')
}

export function memberList(members: unknown): Member[] {
  return (Array.isArray(members) ? members : []) as Member[]
}
