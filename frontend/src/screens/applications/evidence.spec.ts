import { describe, expect, it } from 'vitest'
import { cohesionPercent, memberList, portsText } from './evidence'

describe('suggestion evidence', () => {
  it('formats cohesion once as a percentage', () => {
    expect(cohesionPercent(0.934)).toBe('93 %')
    expect(cohesionPercent(1)).toBe('100 %')
    expect(cohesionPercent(undefined)).toBe('0 %')
  })
  it('lists ports heaviest first as given', () => {
    expect(portsText([{ port: 5432, weight: 12000 }, { port: 8080, weight: 3100 }])).toBe('5432 (12,000) · 8080 (3,100)')
    expect(portsText(null)).toBe('')
  })
  it('reads members', () => {
    expect(memberList([{ id: 1, name: 'a' }])).toEqual([{ id: 1, name: 'a' }])
    expect(memberList(undefined)).toEqual([])
  })
})
