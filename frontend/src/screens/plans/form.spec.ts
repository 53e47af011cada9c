import { describe, expect, it } from 'vitest'
import { defaultPlanForm, planInput, waveChoices } from './form'

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

describe('waveChoices', () => {
  it('offers every other wave and one new last wave', () => {
    expect(waveChoices(3, 2)).toEqual([{ value: 1, isNew: false }, { value: 3, isNew: false }, { value: 4, isNew: true }])
  })
})
