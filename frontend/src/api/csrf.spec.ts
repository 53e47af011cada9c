import { describe, expect, it } from 'vitest'
import { csrfToken, withCsrf } from './csrf'

describe('csrfToken', () => {
  it('reads ferry_csrf among other cookies', () => {
    expect(csrfToken('a=1; ferry_csrf=abc%3D%3D; b=2')).toBe('abc==')
    expect(csrfToken('ferry_csrf_old=x; other=y')).toBe('')
    expect(csrfToken('')).toBe('')
  })
})

describe('withCsrf', () => {
  it('adds the header to non-GET requests only', () => {
    document.cookie = 'ferry_csrf=tok123'
    const post = new Headers(withCsrf({ method: 'POST' }).headers)
    expect(post.get('X-CSRF-Token')).toBe('tok123')
    const get = new Headers(withCsrf({ method: 'GET' }).headers)
    expect(get.get('X-CSRF-Token')).toBeNull()
  })
})
