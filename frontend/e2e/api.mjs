// api.mjs is a tiny cookie-session client used to seed data through the same
// public API the UI uses (REST auth + GraphQL).
export class Api {
  constructor(base) {
    this.base = base
    this.cookies = new Map()
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  keepCookies(res) {
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [kv] = c.split(';')
      const i = kv.indexOf('=')
      this.cookies.set(kv.slice(0, i).trim(), kv.slice(i + 1).trim())
    }
  }

  async login(email, password) {
    const res = await fetch(`${this.base}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    })
    if (!res.ok) throw new Error(`login ${res.status}: ${await res.text()}`)
    this.keepCookies(res)
    return res.json()
  }

  // gql posts one operation and throws on GraphQL errors unless allowErrors.
  async gql(query, variables = {}, { allowErrors = false } = {}) {
    const res = await fetch(`${this.base}/graphql`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Cookie: this.cookieHeader(),
        'X-CSRF-Token': this.cookies.get('ferry_csrf') ?? '',
      },
      body: JSON.stringify({ query, variables }),
    })
    const body = await res.json()
    if (!allowErrors && body.errors?.length) throw new Error(`graphql: ${body.errors.map((e) => e.message).join('; ')}`)
    return body
  }

  // upload posts files to /api/v1/imports as multipart/form-data, as the
  // discovery screen does; it throws unless the import was accepted.
  async upload(files) {
    const form = new FormData()
    for (const [name, content] of Object.entries(files)) form.append('file', new Blob([content]), name)
    const res = await fetch(`${this.base}/api/v1/imports`, {
      method: 'POST',
      headers: { Cookie: this.cookieHeader(), 'X-CSRF-Token': this.cookies.get('ferry_csrf') ?? '' },
      body: form,
    })
    const body = await res.text()
    if (!res.ok) throw new Error(`upload ${res.status}: ${body}`)
    return JSON.parse(body)
  }
}
