// server.mjs starts a real `ferry serve` on a free loopback port with a fresh
// data directory and a random admin password, and stops it again.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

// pollUntil retries fn until it returns a truthy value or the deadline passes.
export async function pollUntil(fn, { timeoutMs = 30000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let lastErr
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      lastErr = e
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`)
}

export async function startFerry(bin, extraEnv = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'ferry-e2e-'))
  const port = await freePort()
  const admin = { email: 'admin@example.com', password: `e2e-${randomBytes(12).toString('hex')}` }
  const env = {
    ...process.env,
    FERRY_ADDR: `127.0.0.1:${port}`,
    FERRY_DATA_DIR: dataDir,
    FERRY_ADMIN_EMAIL: admin.email,
    FERRY_ADMIN_PASSWORD: admin.password,
    // Where the instances a cloud provider starts (an Alibaba migration's
    // gateway) call back.
    FERRY_PUBLIC_URL: `http://127.0.0.1:${port}`,
    FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'warn',
    // Launches boot in qemu (scenario 20 migrates the bootable test image);
    // a TCG boot on a loaded machine takes a minute or more.
    FERRY_LAUNCH_BOOT_TIMEOUT: process.env.FERRY_LAUNCH_BOOT_TIMEOUT ?? '6m',
    ...extraEnv,
  }
  delete env.FERRY_DATABASE_URL
  delete env.FERRY_REDIS_URL
  const child = spawn(bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  const keep = (b) => {
    log += b.toString()
    if (log.length > 200000) log = log.slice(-100000)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  let exited = null
  child.on('exit', (code, sig) => (exited = { code, sig }))
  const url = `http://127.0.0.1:${port}`
  try {
    await pollUntil(async () => {
      if (exited) throw new Error(`ferry serve exited (${exited.code ?? exited.sig})\n${log}`)
      const r = await fetch(`${url}/readyz`)
      return r.ok
    }, { timeoutMs: 60000, what: '/readyz' })
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  return {
    url,
    admin,
    dataDir,
    log: () => log,
    async stop() {
      if (!exited) {
        const done = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000)
        await done
        clearTimeout(timer)
      }
      // Launched VMs outlive the server by design (a restart finds them);
      // a scenario that failed mid-launch must not leave them running.
      await killLaunchVMs(dataDir)
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

// killLaunchVMs ends the qemu processes whose command line names dataDir
// (the local cloud's VMs of this server), and only those.
async function killLaunchVMs(dataDir) {
  const { readdir, readFile } = await import('node:fs/promises')
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes('qemu') && cmd.includes(dataDir)) {
      try { process.kill(Number(pid), 'SIGKILL') } catch {}
    }
  }
}
