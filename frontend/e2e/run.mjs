// run.mjs is the end-to-end suite: a real `ferry serve` ($FERRY_BIN) with a
// fresh database, driven through Debian's chromium by playwright-core. It
// builds nothing; build the UI and the binary first. Prints `N passed, N
// failed` last and exits non-zero on any failure.
import { chromium } from 'playwright-core'
import { mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startFerry } from './server.mjs'
import { scenarios } from './scenarios.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const shotDir = resolve(here, '../build/screenshots')
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const only = process.env.E2E_ONLY ? new RegExp(process.env.E2E_ONLY) : null

function fail(msg) {
  console.error(msg)
  console.log('0 passed, 1 failed')
  process.exit(1)
}

const bin = process.env.FERRY_BIN
if (!bin) fail('FERRY_BIN is not set: point it at a built ferry binary (go build -o bin/ferry ./cmd/ferry)')
if (!existsSync(bin)) fail(`FERRY_BIN=${bin} does not exist`)
if (!existsSync(chromiumPath)) fail(`${chromiumPath} is missing: apt-get install -y chromium`)

await mkdir(shotDir, { recursive: true })
const server = await startFerry(resolve(bin)).catch((e) => fail(`could not start ferry serve: ${e.message}`))
let browser
let passed = 0
let failed = 0
try {
  // The UI must be embedded: a binary built before `npm run build` serves a placeholder.
  const index = await (await fetch(`${server.url}/`)).text()
  if (!index.includes('id="app"')) throw new Error('ferry serve does not serve the built UI: run `npm run build` before `go build`')

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  })
  const shared = {} // scenarios run in order and may pass data along
  for (const sc of scenarios) {
    if (only && !only.test(sc.name)) continue
    // A fresh context per scenario: its own cookies and storage.
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-US' })
    context.setDefaultTimeout(15000)
    const page = await context.newPage()
    const consoleErrors = []
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text())
    })
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`))
    const started = Date.now()
    let error
    try {
      const shot = (label) => page.screenshot({ path: join(shotDir, `${sc.name}-${label}.png`), fullPage: true })
      await sc.run({ page, context, server, shared, base: server.url, shot, bin: resolve(bin) })
      const unexpected = consoleErrors.filter((t) => !(sc.allowConsole ?? []).some((re) => re.test(t)))
      if (unexpected.length) throw new Error(`console errors:\n  ${unexpected.join('\n  ')}`)
    } catch (e) {
      error = e
    }
    await page.screenshot({ path: join(shotDir, `${sc.name}.png`), fullPage: true }).catch(() => {})
    await context.close()
    const ms = Date.now() - started
    if (error) {
      failed++
      console.log(`FAIL ${sc.name} (${ms} ms)\n  ${String(error.stack ?? error).split('\n').slice(0, 6).join('\n  ')}`)
    } else {
      passed++
      console.log(`ok   ${sc.name} (${ms} ms)`)
    }
  }
} catch (e) {
  failed++
  console.log(`FAIL harness: ${e.stack ?? e}`)
} finally {
  await browser?.close().catch(() => {})
  if (failed && process.env.E2E_SERVER_LOG !== '0') console.log(`--- ferry serve log (tail) ---\n${server.log().slice(-4000)}`)
  await server.stop()
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
