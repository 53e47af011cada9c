// installCommand is the exact command an admin pastes on a source host.
export function installCommand(origin: string, token: string): string {
  return `ferry agent register --server ${origin} --token ${token}`
}

export type HeartbeatState = 'online' | 'late' | 'offline' | 'never' | 'revoked'

// heartbeatState classifies an agent by the age of its last heartbeat:
// online under 2 minutes, late under 15, offline after that.
export function heartbeatState(last: string | null | undefined, revokedAt: string | null | undefined, now = Date.now()): HeartbeatState {
  if (revokedAt) return 'revoked'
  if (!last) return 'never'
  const age = now - new Date(last).getTime()
  if (age < 2 * 60_000) return 'online'
  if (age < 15 * 60_000) return 'late'
  return 'offline'
}

export type TokenState = 'active' | 'expired' | 'used' | 'revoked'

export function tokenState(tok: { expiresAt: string; maxUses: number; uses: number; revokedAt?: string | null }, now = Date.now()): TokenState {
  if (tok.revokedAt) return 'revoked'
  if (new Date(tok.expiresAt).getTime() <= now) return 'expired'
  if (tok.uses >= tok.maxUses) return 'used'
  return 'active'
}

export interface RowError {
  file: string
  row: number
  column?: string
  reason: string
}

// rowErrors reads the per-row error maps of an import run defensively: the
// field is free-form JSON on the wire.
export function rowErrors(errors: ReadonlyArray<Record<string, unknown>> | null | undefined): RowError[] {
  return (errors ?? []).map((e) => ({
    file: String(e.file ?? ''),
    row: Number(e.row ?? 0),
    column: e.column ? String(e.column) : undefined,
    reason: String(e.reason ?? e.message ?? ''),
  }))
}

// UploadResult is the answer of POST /api/v1/imports.
export interface UploadResult {
  importRun: { id: number; status: string }
  rows: number
  rowsImported: number
  hostsCreated: number
  hostsUpdated: number
  connections: number
  errors: { file: string; row: number; column: string; message: string }[]
  errorsDropped: number
}

// uploadFiles posts estate files as one import (multipart, one part per
// file). A refused upload throws with the server's message, which names the
// file and the reason.
export async function uploadFiles(files: File[], init: (i: RequestInit) => RequestInit, fetcher: typeof fetch = fetch): Promise<UploadResult> {
  const body = new FormData()
  for (const f of files) body.append('files', f, f.name)
  const res = await fetcher('/api/v1/imports', init({ method: 'POST', body }))
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }))
  if (!res.ok) throw new Error(String(data.error ?? `HTTP ${res.status}`))
  return data as UploadResult
}
