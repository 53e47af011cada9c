// csrfToken reads the ferry_csrf cookie that the server sets at sign-in.
// Every non-GET request made with the cookie session must echo it in the
// X-CSRF-Token header.
export function csrfToken(cookie: string = document.cookie): string {
  for (const part of cookie.split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === 'ferry_csrf') return decodeURIComponent(v.join('='))
  }
  return ''
}

// withCsrf adds the CSRF header to a fetch init for non-GET methods.
export function withCsrf(init: RequestInit = {}): RequestInit {
  const method = (init.method ?? 'GET').toUpperCase()
  if (method === 'GET' || method === 'HEAD') return init
  const headers = new Headers(init.headers)
  const token = csrfToken()
  if (token) headers.set('X-CSRF-Token', token)
  return { ...init, headers, credentials: 'same-origin' }
}
