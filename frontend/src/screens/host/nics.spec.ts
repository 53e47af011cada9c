import { describe, expect, it } from 'vitest'
import { nicRows } from './nics'

describe('nicRows', () => {
  it('shows imported addresses and MACs when there are no NIC rows', () => {
    expect(nicRows({ nics: [], ips: ['10.0.0.5', '10.0.1.5'], macs: ['00:50:56:aa:bb:01', '00:50:56:aa:bb:02'] }).map((r) => [r.mac, r.addresses])).toEqual([
      ['00:50:56:aa:bb:01', ['10.0.0.5']], ['00:50:56:aa:bb:02', ['10.0.1.5']],
    ])
    expect(nicRows({ ips: ['10.0.0.5'] })).toHaveLength(1)
    expect(nicRows({})).toEqual([])
  })
  it('prefers reported NICs', () => {
    expect(nicRows({ nics: [{ id: '1', name: 'eth0', mac: 'm', addresses: ['a'], network: 'n' }], ips: ['x'] })[0].derived).toBe(false)
  })
})
