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
}

export const defaultPlanForm = (): PlanForm => ({
  name: '', target: 'alibaba', start: '', bandwidth: '1Gbps', maxHostsPerWave: 50, maxBytesPerWave: '',
  pilotHosts: 10, transferWindows: '', cutoverWindows: 'Sat 22:00-04:00', maxDowntime: '',
})

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
  return { name: f.name.trim(), target: f.target, constraints: c }
}

// waveChoices are the waves a host may move to: every existing one and one new last wave.
export function waveChoices(waves: number, from: number): { value: number; isNew: boolean }[] {
  const out: { value: number; isNew: boolean }[] = []
  for (let w = 1; w <= waves + 1; w++) if (w !== from) out.push({ value: w, isNew: w === waves + 1 })
  return out
}
