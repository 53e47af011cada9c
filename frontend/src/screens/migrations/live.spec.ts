import { describe, expect, it } from 'vitest'
import { idsKey, needsRefetch, overlay } from './live'

const row = { id: '1', updatedAt: '2026-11-23T12:00:00.5Z', state: 'syncing', allowedActions: ['testLaunch', 'rollback'], latestRecoveryPoint: { id: '9' }, bytesDone: 10, host: { name: 'web-01' } }

describe('live progress', () => {
  it('overlays the newest numbers and keeps the rest of the row', () => {
    const out = overlay([row, { ...row, id: '2' }], new Map([['1', { bytesDone: 99, updatedAt: '2026-11-23T12:00:01Z' }]]))
    expect(out[0]).toMatchObject({ id: '1', bytesDone: 99, host: { name: 'web-01' } })
    expect(out[1].bytesDone).toBe(10)
  })
  it('keeps a row the list read after the event', () => {
    const out = overlay([row], new Map([['1', { bytesDone: 5, updatedAt: '2026-11-23T12:00:00.25Z' }]]))
    expect(out[0].bytesDone).toBe(10)
  })
  it('refetches the list when the state, recovery point or actions change, not for numbers', () => {
    expect(needsRefetch(row, { ...row, bytesDone: 20 })).toBe(false)
    expect(needsRefetch(row, { ...row, state: 'test_launched' })).toBe(true)
    expect(needsRefetch(row, { ...row, latestRecoveryPoint: { id: '10' } })).toBe(true)
    expect(needsRefetch({ ...row, latestRecoveryPoint: null }, { ...row, latestRecoveryPoint: undefined })).toBe(false)
    expect(needsRefetch(row, { ...row, allowedActions: ['rollback'] })).toBe(true)
  })
  it('names a set of ids independently of order', () => {
    expect(idsKey(['3', '1'])).toBe(idsKey(['1', '3']))
    expect(idsKey([])).toBe('')
  })
})
