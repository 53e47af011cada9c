import { describe, expect, it } from 'vitest'
import { pickAssumptions } from './assumptions'

describe('pickAssumptions', () => {
  it('keeps known finite numbers only', () => {
    expect(pickAssumptions({ years: '4.6', computePerVcpuMonth: 10, bogus: 3, storagePerGibMonth: 'x', adminCostPerYear: '' })).toEqual({ years: 5, computePerVcpuMonth: 10 })
  })
})
