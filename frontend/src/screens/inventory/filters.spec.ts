import { describe, expect, it } from 'vitest'
import { hostOrder, hostWhere } from './filters'

describe('hostWhere', () => {
  it('is undefined without filters so the server lists everything', () => {
    expect(hostWhere({ search: '  ', environments: [], criticalities: [] })).toBeUndefined()
  })

  it('searches name, FQDN and OS case-insensitively', () => {
    expect(hostWhere({ search: ' db ', environments: [], criticalities: [] })).toEqual({
      or: [{ nameContainsFold: 'db' }, { fqdnContainsFold: 'db' }, { osContainsFold: 'db' }],
    })
  })

  it('combines filters with and', () => {
    expect(hostWhere({ search: '', environments: ['production'], criticalities: ['high', 'critical'] })).toEqual({
      and: [{ environmentIn: ['production'] }, { criticalityIn: ['high', 'critical'] }],
    })
  })
})

describe('hostOrder', () => {
  it('maps table columns to server order fields', () => {
    expect(hostOrder('memoryMib', 'descending')).toEqual([{ field: 'MEMORY_MIB', direction: 'DESC' }])
    expect(hostOrder('cpus', 'ascending')).toEqual([{ field: 'CPUS', direction: 'ASC' }])
  })

  it('falls back to name for unsortable columns or no order', () => {
    expect(hostOrder('fqdn', 'ascending')).toEqual([{ field: 'NAME', direction: 'ASC' }])
    expect(hostOrder('cpus', null)).toEqual([{ field: 'NAME', direction: 'ASC' }])
  })
})
