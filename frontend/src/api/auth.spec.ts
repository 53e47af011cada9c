import { afterEach, describe, expect, it, vi } from 'vitest'
import { AuthError, can, fetchMe, login, session } from './auth'

const user = { id: '1', email: 'a@example.com', name: 'A', role: 'operator', tenant: { id: '2', name: 'T' } }

afterEach(() => {
  vi.unstubAllGlobals()
  document.cookie = 'ferry_csrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT'
})

describe('auth', () => {
  it('skips /auth/me when there is no session cookie', async () => {
    const f = vi.fn()
    vi.stubGlobal('fetch', f)
    expect(await fetchMe()).toBeNull()
    expect(f).not.toHaveBeenCalled()
    expect(session.checked).toBe(true)
  })

  it('signs in and checks roles', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ user, csrfToken: 'x' }), { status: 200 })))
    await login('a@example.com', 'pw')
    expect(session.user?.email).toBe('a@example.com')
    expect(can('viewer')).toBe(true)
    expect(can('operator')).toBe(true)
    expect(can('admin')).toBe(false)
  })

  it('reports the server message and status on failure', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ error: 'too many attempts' }), { status: 429 })))
    const err = await login('a@example.com', 'pw').catch((e) => e)
    expect(err).toBeInstanceOf(AuthError)
    expect(err.status).toBe(429)
    expect(err.message).toBe('too many attempts')
  })
})
