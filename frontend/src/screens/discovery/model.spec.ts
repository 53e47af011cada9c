import { describe, expect, it } from 'vitest'
import { heartbeatState, installCommand, rowErrors, tokenState } from './model'

const now = Date.parse('2026-01-01T12:00:00Z')
const ago = (ms: number) => new Date(now - ms).toISOString()

describe('installCommand', () => {
  it('is the exact register command', () => {
    expect(installCommand('https://ferry.example:8443', 'frt_abc')).toBe('ferry agent register --server https://ferry.example:8443 --token frt_abc')
  })
})

describe('heartbeatState', () => {
  it.each([
    [ago(30_000), null, 'online'],
    [ago(5 * 60_000), null, 'late'],
    [ago(60 * 60_000), null, 'offline'],
    [null, null, 'never'],
    [ago(1000), ago(10), 'revoked'],
  ])('%s → %s', (last, revoked, want) => expect(heartbeatState(last, revoked, now)).toBe(want))
})

describe('tokenState', () => {
  const future = new Date(now + 3600_000).toISOString()
  it('checks revocation, expiry and uses', () => {
    expect(tokenState({ expiresAt: future, maxUses: 2, uses: 1 }, now)).toBe('active')
    expect(tokenState({ expiresAt: future, maxUses: 2, uses: 2 }, now)).toBe('used')
    expect(tokenState({ expiresAt: ago(1), maxUses: 2, uses: 0 }, now)).toBe('expired')
    expect(tokenState({ expiresAt: future, maxUses: 2, uses: 0, revokedAt: ago(5) }, now)).toBe('revoked')
  })
})

describe('rowErrors', () => {
  it('reads free-form maps', () => {
    expect(rowErrors([{ file: 'hosts.csv', row: 3, column: 'memory', reason: 'not a number' }, { message: 'bad file' }])).toEqual([
      { file: 'hosts.csv', row: 3, column: 'memory', reason: 'not a number' },
      { file: '', row: 0, column: undefined, reason: 'bad file' },
    ])
    expect(rowErrors(null)).toEqual([])
  })
})
