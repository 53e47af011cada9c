import type { GeneratePlanInput } from '@/gql/graphql'

// PlanForm is what the "Generate plan" dialog edits; planInput turns it into
// the mutation's input (units as in plan.yaml: 1Gbps, 40TiB, 4h).
export interface PlanForm {
  name: string
  target: string
  start: string
  bandwidth: string
  maxHostsPerWave: number
  maxBytesPerWave: string
  pilotHosts: number
  // One window a line, in Ferry's one window grammar (the server parses
  // it): "Mon-Fri 19:00-07:00" or "Mon-Fri 19:00-07:00=800Mbps".
  transferWindows: string
  // One window a line or separated by ";".
  cutoverWindows: string
  maxDowntime: string
  // IANA zone for start and every window, e.g. Asia/Shanghai; empty = UTC.
  timezone: string
  // Rules, one a line (host ids, host names or application:NAME):
  // "name: a, b, application:billing"
  keepTogether: string
  // "a, b"
  keepApart: string
  // "first > then"
  before: string
  // "host = 2"
  pins: string
}

// RuleProblem names a line of a rules field the form cannot read.
export interface RuleProblem { field: 'keepTogether' | 'keepApart' | 'before' | 'pins'; line: number; text: string }

export const defaultPlanForm = (): PlanForm => ({
  name: '', target: 'alibaba', start: '', bandwidth: '1Gbps', maxHostsPerWave: 50, maxBytesPerWave: '',
  pilotHosts: 10, transferWindows: '', cutoverWindows: 'Sat 22:00-04:00', maxDowntime: '',
  timezone: '', keepTogether: '', keepApart: '', before: '', pins: '',
})

const ruleLines = (s: string) => s.split('\n').map((l, i) => ({ l: l.trim(), n: i + 1 })).filter((x) => x.l)
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)

// planRules reads the rules fields into the mutation's rules; lines it
// cannot read come back as problems (nothing is sent then).
export function planRules(f: PlanForm): { rules?: GeneratePlanInput['rules']; problems: RuleProblem[] } {
  const problems: RuleProblem[] = []
  const rules: NonNullable<GeneratePlanInput['rules']> = {}
  const kt = ruleLines(f.keepTogether).flatMap(({ l, n }) => {
    const i = l.indexOf(':')
    const name = i > 0 ? l.slice(0, i).trim() : ''
    const hosts = i > 0 ? list(l.slice(i + 1)) : []
    // "application:x" alone is a reference, not a name.
    if (!name || hosts.length < 1 || name.startsWith('application')) {
      problems.push({ field: 'keepTogether', line: n, text: l })
      return []
    }
    return [{ name, hosts }]
  })
  if (kt.length) rules.keepTogether = kt
  const ka = ruleLines(f.keepApart).flatMap(({ l, n }) => {
    const p = list(l)
    if (p.length !== 2) {
      problems.push({ field: 'keepApart', line: n, text: l })
      return []
    }
    return [{ a: p[0], b: p[1] }]
  })
  if (ka.length) rules.keepApart = ka
  const bf = ruleLines(f.before).flatMap(({ l, n }) => {
    const p = l.split('>').map((x) => x.trim())
    if (p.length !== 2 || !p[0] || !p[1]) {
      problems.push({ field: 'before', line: n, text: l })
      return []
    }
    return [{ first: p[0], then: p[1] }]
  })
  if (bf.length) rules.before = bf
  const pins = ruleLines(f.pins).flatMap(({ l, n }) => {
    const p = l.split('=').map((x) => x.trim())
    const wave = Number(p[1])
    if (p.length !== 2 || !p[0] || !Number.isInteger(wave) || wave < 1) {
      problems.push({ field: 'pins', line: n, text: l })
      return []
    }
    return [{ host: p[0], wave }]
  })
  if (pins.length) rules.pins = pins
  return { rules: Object.keys(rules).length ? rules : undefined, problems }
}

const lines = (s: string) => s.split(/[\n;]/).map((l) => l.trim()).filter(Boolean)

export function planInput(f: PlanForm): GeneratePlanInput {
  const c: GeneratePlanInput['constraints'] = { bandwidth: f.bandwidth.trim() }
  if (f.start.trim()) c.start = f.start.trim()
  if (f.maxHostsPerWave > 0) c.maxHostsPerWave = f.maxHostsPerWave
  if (f.maxBytesPerWave.trim()) c.maxBytesPerWave = f.maxBytesPerWave.trim()
  c.pilotHosts = Math.max(0, f.pilotHosts)
  // Each line goes as it was typed, its rate with it: the server reads
  // windows and rates with one parser and names the line in its errors.
  const tw = lines(f.transferWindows).map((when) => ({ when }))
  if (tw.length) c.transferWindows = tw
  const cw = lines(f.cutoverWindows)
  if (cw.length) c.cutoverWindows = cw
  if (f.maxDowntime.trim()) c.maxDowntime = f.maxDowntime.trim()
  if (f.timezone.trim()) c.timezone = f.timezone.trim()
  const { rules } = planRules(f)
  return rules ? { name: f.name.trim(), target: f.target, constraints: c, rules } : { name: f.name.trim(), target: f.target, constraints: c }
}

// waveChoices are the waves a host may move to: every existing one and one new last wave.
export function waveChoices(waves: number, from: number): { value: number; isNew: boolean }[] {
  const out: { value: number; isNew: boolean }[] = []
  for (let w = 1; w <= waves + 1; w++) if (w !== from) out.push({ value: w, isNew: w === waves + 1 })
  return out
}
