// downloadReport fetches a report route (/api/v1/reports/…) with the
// session cookie and saves the answer under the server's file name. An
// error answer is thrown with the server's message.
export async function downloadReport(path: string, params: Record<string, string | number | undefined>): Promise<string> {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v))
  const res = await fetch(`${path}?${q}`, { credentials: 'same-origin' })
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`
    try {
      const body = await res.json()
      msg = typeof body.error === "string" ? body.error : msg
    } catch {
      /* not JSON */
    }
    throw new Error(msg)
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') ?? '')?.[1] ?? path.split('/').pop() ?? 'report'
  const url = URL.createObjectURL(await res.blob())
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
  return name
}
