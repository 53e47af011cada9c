import { describe, expect, it } from 'vitest'
import { defaultPlanForm, planInput, planRules, waveChoices } from './form'

describe('planInput', () => {
  it('maps the form to the mutation input with plan.yaml units', () => {
    const f = { ...defaultPlanForm(), name: ' wave plan ', start: '2026-12-07', maxBytesPerWave: '40TiB',
      transferWindows: 'Mon-Thu 19:00-07:00=800Mbps\nSat-Sun 00:00-24:00\n', cutoverWindows: 'Sat 22:00-04:00; Wed 23:00-03:00' }
    expect(planInput(f)).toEqual({
      name: 'wave plan', target: 'alibaba',
      constraints: {
        bandwidth: '1Gbps', start: '2026-12-07', maxHostsPerWave: 50, maxBytesPerWave: '40TiB', pilotHosts: 10,
        // The line goes whole, rate included: the server parses it.
        transferWindows: [{ when: 'Mon-Thu 19:00-07:00=800Mbps' }, { when: 'Sat-Sun 00:00-24:00' }],
        cutoverWindows: ['Sat 22:00-04:00', 'Wed 23:00-03:00'],
      },
    })
  })
  it('leaves out what is empty so the server applies its defaults', () => {
    const c = planInput({ ...defaultPlanForm(), cutoverWindows: '', maxHostsPerWave: 0, pilotHosts: -1 }).constraints
    expect(c).toEqual({ bandwidth: '1Gbps', pilotHosts: 0 })
  })
})

describe('planRules', () => {
  it('reads keep-together, keep-apart, before, pins and the time zone the YAML supports', () => {
    const f = { ...defaultPlanForm(), name: 'p', timezone: 'Asia/Shanghai',
      keepTogether: 'billing: db01, app01, application:ledger\n', keepApart: 'dc01, dc02', before: 'db01 > app01\napplication:auth > application:shop', pins: 'db01 = 2' }
    const inp = planInput(f)
    expect(inp.constraints.timezone).toBe('Asia/Shanghai')
    expect(inp.rules).toEqual({
      keepTogether: [{ name: 'billing', hosts: ['db01', 'app01', 'application:ledger'] }],
      keepApart: [{ a: 'dc01', b: 'dc02' }],
      before: [{ first: 'db01', then: 'app01' }, { first: 'application:auth', then: 'application:shop' }],
      pins: [{ host: 'db01', wave: 2 }],
    })
  })
  it('names the lines it cannot read', () => {
    const { problems } = planRules({ ...defaultPlanForm(), keepApart: 'only-one', pins: 'db01 = zero', before: 'a >' })
    expect(problems.map((p) => [p.field, p.line])).toEqual([['keepApart', 1], ['before', 1], ['pins', 1]])
  })
})

describe('waveChoices', () => {
  it('offers every other wave and one new last wave', () => {
    expect(waveChoices(3, 2)).toEqual([{ value: 1, isNew: false }, { value: 3, isNew: false }, { value: 4, isNew: true }])
  })
})
