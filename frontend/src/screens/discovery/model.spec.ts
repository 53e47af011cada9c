import { describe, expect, it } from 'vitest'
import { heartbeatState, installCommand, rowErrors, tokenState, uploadFiles } from './model'

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

describe('uploadFiles', () => {
  it('posts every file as a multipart part and returns the result', async () => {
    let sent: FormData | undefined
    const fake = (async (_url: string, init: RequestInit) => {
      sent = init.body as FormData
      return new Response(JSON.stringify({ importRun: { id: 1, status: 'partial' }, rows: 3, errors: [{ file: 'a.csv', row: 2, column: 'ip', message: 'bad' }] }), { status: 200 })
    }) as unknown as typeof fetch
    const res = await uploadFiles([new File(['x'], 'a.csv'), new File(['y'], 'b.txt')], (i) => i, fake)
    expect(sent?.getAll('files').map((f) => (f as File).name)).toEqual(['a.csv', 'b.txt'])
    expect(res.errors[0].column).toBe('ip')
  })
  it('throws the server message of a refused upload', async () => {
    const fake = (async () => new Response(JSON.stringify({ error: 'import notes.bin: unrecognised file format; nothing was imported' }), { status: 400 })) as unknown as typeof fetch
    await expect(uploadFiles([new File(['x'], 'notes.bin')], (i) => i, fake)).rejects.toThrow('notes.bin')
  })
})
