import { reactive, readonly } from 'vue'
import { csrfToken, withCsrf } from './csrf'

export type Role = 'owner' | 'admin' | 'consultant' | 'operator' | 'viewer' | 'platform'

export interface SessionUser {
  id: string
  email: string
  name: string
  role: Role
  tenant: { id: string; name: string }
}

// AuthError carries the HTTP status so the sign-in form can tell a wrong
// password (401) from rate limiting (429).
export class AuthError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message)
  }
}

const state = reactive<{ user: SessionUser | null; checked: boolean }>({ user: null, checked: false })

// session is the signed-in user, shared by the router guard and the shell.
export const session = readonly(state)

async function readError(res: Response): Promise<string> {
  try {
    const body = await res.json()
    if (body && typeof body.error === 'string') return body.error
  } catch {
    /* not JSON */
  }
  return res.statusText || `HTTP ${res.status}`
}

export async function login(email: string, password: string): Promise<SessionUser> {
  const res = await fetch(
    '/auth/login',
    withCsrf({
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    }),
  )
  if (!res.ok) throw new AuthError(await readError(res), res.status)
  const body = await res.json()
  state.user = body.user
  state.checked = true
  return body.user
}

// fetchMe asks the server who is signed in; null when nobody is.
// Without the ferry_csrf cookie there is no session either (the server sets
// both together), so the request is skipped rather than answered with a 401.
export async function fetchMe(): Promise<SessionUser | null> {
  if (!csrfToken()) {
    state.user = null
    state.checked = true
    return null
  }
  try {
    const res = await fetch('/auth/me', { credentials: 'same-origin' })
    state.user = res.ok ? (await res.json()).user : null
  } catch {
    state.user = null
  }
  state.checked = true
  return state.user
}

export async function logout(): Promise<void> {
  try {
    await fetch('/auth/logout', withCsrf({ method: 'POST' }))
  } finally {
    state.user = null
  }
}

// forgetSession is called when the API answers UNAUTHENTICATED.
export function forgetSession(): void {
  state.user = null
}

const rank: Record<Role, number> = { viewer: 0, operator: 1, consultant: 2, admin: 3, owner: 4, platform: 5 }

// can tells whether the signed-in user has at least the given role.
export function can(min: Role): boolean {
  return !!state.user && rank[state.user.role] >= rank[min]
}
