// bench-inventory.mjs measures the inventory at 20,000 hosts against a real
// `ferry serve` ($FERRY_BIN): API timings of the queries the screen sends and
// the browser time from navigation to a rendered first page, after a sort and
// after a filter. Not part of test:e2e (seeding takes a while); run with
// `FERRY_BIN=... node e2e/bench-inventory.mjs [hosts]`.
import { chromium } from 'playwright-core'
import { startFerry } from './server.mjs'
import { Api } from './api.mjs'
import { seedHosts } from './seed.mjs'

const N = Number(process.argv[2] ?? 20000)
const server = await startFerry(process.env.FERRY_BIN)
const results = []
try {
  const api = new Api(server.url)
  await api.login(server.admin.email, server.admin.password)
  let t0 = performance.now()
  await seedHosts(api, N)
  results.push(['seed hosts through createHost (10 per request)', `${((performance.now() - t0) / 1000).toFixed(1)} s`])

  const q = `query($first:Int,$orderBy:[HostOrder!],$where:HostWhereInput){hosts(first:$first,orderBy:$orderBy,where:$where){totalCount pageInfo{hasNextPage endCursor} edges{node{id name fqdn os arch cpus memoryMib diskProvisionedBytes diskUsedBytes environment criticality source owner ips lastSeenAt createdAt}}}}`
  const time = async (label, vars) => {
    const runs = []
    for (let i = 0; i < 5; i++) {
      const s = performance.now()
      await api.gql(q, vars)
      runs.push(performance.now() - s)
    }
    runs.sort((a, b) => a - b)
    results.push([label, `${runs[2].toFixed(0)} ms (median of 5)`])
  }
  await time('API: first page of 50 by name', { first: 50, orderBy: [{ field: 'NAME', direction: 'ASC' }] })
  await time('API: first page of 200 by memory desc', { first: 200, orderBy: [{ field: 'MEMORY_MIB', direction: 'DESC' }] })
  await time('API: search "host-1999" (contains, case-folded)', { first: 50, where: { or: [{ nameContainsFold: 'host-1999' }, { fqdnContainsFold: 'host-1999' }, { osContainsFold: 'host-1999' }] } })
  await time('API: environment = production', { first: 50, where: { environmentIn: ['production'] } })

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'] })
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage()
  await page.goto(`${server.url}/signin`)
  await page.locator('input[data-test=email]').fill(server.admin.email)
  await page.locator('input[data-test=password]').fill(server.admin.password)
  await page.locator('[data-test=submit]').click()
  await page.waitForURL(/dashboard/)
  t0 = performance.now()
  await page.goto(`${server.url}/inventory`)
  await page.locator('[data-test=total]', { hasText: `${N}` }).waitFor({ timeout: 60000 })
  results.push(['browser: open /inventory to first page rendered', `${(performance.now() - t0).toFixed(0)} ms`])
  t0 = performance.now()
  const hdr = page.locator('[data-test=hosts-table] th', { hasText: 'Memory' })
  await hdr.click()
  await hdr.locator('.sort-caret.descending').click()
  await page.waitForFunction(() => document.querySelector('[data-test=hosts-table] tbody tr td:nth-child(5)')?.textContent?.trim() === '32 GiB')
  results.push(['browser: sort by memory (two header clicks) to rows shown', `${(performance.now() - t0).toFixed(0)} ms`])
  t0 = performance.now()
  // The last host's name: unique whatever N is.
  await page.locator('input[data-test=search]').fill(`host-${String(N - 1).padStart(5, '0')}`)
  await page.locator('[data-test=total]', { hasText: '1 in total' }).waitFor()
  results.push(['browser: type a search to one row (incl. 300 ms debounce)', `${(performance.now() - t0).toFixed(0)} ms`])
  await browser.close()
} finally {
  await server.stop()
}
console.log(`| inventory at ${N} hosts | time |\n|---|---|`)
for (const [k, v] of results) console.log(`| ${k} | ${v} |`)
