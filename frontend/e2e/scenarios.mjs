// scenarios.mjs: the end-to-end scenarios, run in order against one server.
import { Api } from './api.mjs'
import { pollUntil, startFerry } from './server.mjs'
import { seedHosts, hostInput } from './seed.mjs'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const HOSTS = 120

async function signIn(page, base, { email, password }, path = '/dashboard') {
  await page.goto(`${base}${path}`)
  await page.waitForURL(/\/signin/)
  await page.locator('input[data-test=email]').fill(email)
  await page.locator('input[data-test=password]').fill(password)
  await page.locator('[data-test=submit]').click()
  await page.waitForURL((u) => u.pathname === path)
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg)
}

// errorMessage waits for an Element Plus error message containing text.
async function errorMessage(page, text) {
  await page.locator('.el-message--error', { hasText: text }).first().waitFor()
}

// tapNode taps the first Cytoscape node that match(node, arg) accepts.
async function tapNode(page, match, arg) {
  await page.evaluate(([src, a]) => {
    const cy = document.querySelector('[data-test=graph]')._cyreg.cy
    const fn = new Function(`return (${src})`)()
    const n = cy.nodes().filter((x) => fn(x, a))
    if (n.length === 0) throw new Error('no such node')
    n[0].emit('tap')
  }, [match.toString(), arg])
}

// labelOverlaps measures, in the browser, every label Cytoscape draws at the
// current zoom (a label hidden or too small to draw does not count) and
// returns the pairs that overlap.
async function labelOverlaps(page) {
  return page.evaluate(() => {
    const cy = document.querySelector('[data-test=graph]')._cyreg.cy
    const zoom = cy.zoom()
    const boxes = []
    cy.nodes().forEach((n) => {
      if (!n.data('label') || parseFloat(n.style('font-size')) * zoom < parseFloat(n.style('min-zoomed-font-size'))) return
      const b = n.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true, includeOverlays: false })
      if (b.w > 0 && b.h > 0) boxes.push({ id: n.id(), ...b })
    })
    const pairs = []
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i]
        const b = boxes[j]
        if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) pairs.push([a.id, b.id])
      }
    }
    return { shown: boxes.length, pairs }
  })
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)))
  })
}

export const scenarios = [
  {
    name: '01-signin-wrong-password',
    // The browser itself logs the 401 responses of /auth/me and /auth/login.
    allowConsole: [/status of 401/],
    async run({ page, base, server }) {
      await page.goto(`${base}/`)
      await page.waitForURL(/\/signin/)
      await page.locator('input[data-test=email]').fill(server.admin.email)
      await page.locator('input[data-test=password]').fill('not-the-password')
      await page.locator('[data-test=submit]').click()
      await errorMessage(page, 'Sign-in failed')
      assert(new URL(page.url()).pathname === '/signin', 'a failed sign-in must stay on /signin')
      // Client-side validation: an invalid email never reaches the server.
      await page.locator('input[data-test=email]').fill('nobody')
      await page.locator('input[data-test=password]').fill('x')
      await page.locator('[data-test=submit]').click()
      await page.locator('.el-form-item__error', { hasText: 'valid email' }).waitFor()
    },
  },
  {
    name: '02-signin-and-dashboard',
    async run({ page, base, server, shared }) {
      const api = new Api(base)
      await api.login(server.admin.email, server.admin.password)
      await seedHosts(api, HOSTS)
      shared.api = api
      await signIn(page, base, server.admin, '/dashboard')
      await page.locator('[data-test=tenant]', { hasText: 'Default' }).waitFor()
      await page.locator('[data-test=stat-hosts]', { hasText: String(HOSTS) }).waitFor()
      await page.locator('[data-test=dashboard] .el-empty', { hasText: 'No assessments yet' }).first().waitFor()
      // Before any assessment the cost is "not assessed", never "$0".
      await page.locator('[data-test=stat-cost]', { hasText: 'Not assessed yet' }).waitFor()
      assert(!(await page.locator('[data-test=dashboard]').innerText()).includes('$0'), 'the dashboard shows $0 before any assessment')
      await page.locator('[data-test=risks]', { hasText: 'No risks found' }).waitFor()
    },
  },
  {
    name: '03-deep-link-redirects-through-signin',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/audit')
      await page.locator('[data-test=audit-table]').waitFor()
    },
  },
  {
    name: '04-language-switch-persists',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/dashboard')
      await page.locator('[data-test=lang]').first().click()
      await page.locator('.el-select-dropdown__item', { hasText: '简体中文' }).click()
      await page.locator('[data-test=nav-inventory]', { hasText: '资产清单' }).waitFor()
      await page.locator('.page-title', { hasText: '仪表盘' }).waitFor()
      await page.reload()
      await page.locator('[data-test=nav-dashboard]', { hasText: '仪表盘' }).waitFor()
      const lang = await page.evaluate(() => localStorage.getItem('ferry.locale'))
      assert(lang === 'zh-CN', `saved locale is ${lang}`)
    },
  },
  {
    name: '05-inventory-paginate-filter-sort-columns',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/inventory')
      const rows = page.locator('[data-test=hosts-table] .el-table__body-wrapper tbody tr')
      await page.locator('[data-test=total]', { hasText: `${HOSTS} in total` }).waitFor()
      await page.locator('[data-test=page]', { hasText: `1 / ${Math.ceil(HOSTS / 50)}` }).waitFor()
      await rows.first().filter({ hasText: 'host-00000' }).waitFor()
      // Next page: the server returns the next cursor page.
      await page.locator('[data-test=next]').click()
      await page.locator('[data-test=page]', { hasText: '2 / ' }).waitFor()
      await rows.first().filter({ hasText: 'host-00050' }).waitFor()
      // Filter by environment on the server: a quarter of the hosts are production.
      await page.locator('[data-test=filter-environment]').click()
      await page.locator('.el-select-dropdown__item', { hasText: 'Production' }).click()
      await page.keyboard.press('Escape')
      await page.locator('[data-test=total]', { hasText: `${HOSTS / 4} in total` }).waitFor()
      await page.locator('[data-test=page]', { hasText: '1 / ' }).waitFor()
      // Search narrows to one host.
      await page.locator('input[data-test=search]').fill('host-00044')
      await page.locator('[data-test=total]', { hasText: '1 in total' }).waitFor()
      await page.locator('input[data-test=search]').fill('')
      await page.locator('[data-test=total]', { hasText: `${HOSTS / 4} in total` }).waitFor()
      // Sort by vCPUs descending (click the header twice: asc, then desc).
      const cpuHeader = page.locator('[data-test=hosts-table] th', { hasText: 'vCPUs' })
      await cpuHeader.click()
      await cpuHeader.locator('.sort-caret.descending').click()
      const maxCpus = Math.max(...Array.from({ length: HOSTS }, (_, i) => hostInput(i)).filter((h) => h.environment === 'production').map((h) => h.cpus))
      await page.waitForFunction((n) => {
        const cell = document.querySelector('[data-test=hosts-table] .el-table__body-wrapper tbody tr td:nth-child(4)')
        return cell && cell.textContent.trim() === String(n)
      }, maxCpus)
      // Column chooser: show FQDN, remembered across reloads.
      await page.locator('[data-test=columns]').click()
      await page.locator('[data-test=col-fqdn]').click()
      await page.locator('[data-test=hosts-table] th', { hasText: 'FQDN' }).waitFor()
      await page.reload()
      await page.locator('[data-test=hosts-table] th', { hasText: 'FQDN' }).waitFor()
    },
  },
  {
    name: '06-host-detail-and-not-found',
    async run({ page, base, server, shot }) {
      await signIn(page, base, server.admin, '/inventory')
      await page.locator('input[data-test=search]').fill('host-00007')
      await page.locator('[data-test=total]', { hasText: '1 in total' }).waitFor()
      await page.locator('[data-test=hosts-table] a', { hasText: 'host-00007' }).click()
      await page.waitForURL(/\/hosts\//)
      await page.locator('[data-test=host-name]', { hasText: 'host-00007' }).waitFor()
      const facts = page.locator('[data-test=host-facts]')
      await facts.filter({ hasText: hostInput(7).os }).waitFor()
      await facts.filter({ hasText: '8 GiB' }).waitFor()
      await shot('detail')
      // An unknown id: a readable message and a not-found page, never a blank one.
      await page.goto(`${base}/hosts/999999999`)
      await page.locator('[data-test=host-not-found]').waitFor()
      await page.locator('.el-message--error').first().waitFor()
    },
  },
  {
    name: '07-audit-log-records-actions',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/audit')
      // Actions read as words ("Create host"); the code rides along for filters and tests.
      await page.locator('[data-test=audit-table] [data-action=createHost]', { hasText: 'Create host' }).first().waitFor()
      await page.locator('input[data-test=filter-action]').fill('signIn')
      await page.locator('[data-test=audit-search]').click()
      await page.waitForFunction(() => {
        const cells = [...document.querySelectorAll('[data-test=audit-table] tbody tr td:nth-child(4) span')]
        return cells.length > 0 && cells.every((c) => c.getAttribute('data-action') === 'signIn' && c.textContent.trim() === 'Sign in')
      })
    },
  },
  {
    name: '09-admin-users-tokens-tenants',
    async run({ page, base, server, shared, shot }) {
      await signIn(page, base, server.admin, '/admin')
      const users = page.locator('[data-test=users-table]')
      await users.locator('td', { hasText: server.admin.email }).waitFor()
      // A duplicate email: the server's CONFLICT is shown as a message, the dialog stays.
      await page.locator('[data-test=add-user]').click()
      await page.locator('input[data-test=user-email]').fill(server.admin.email)
      await page.locator('input[data-test=user-password]').fill('a-long-password-1')
      await page.locator('[data-test=user-submit]').click()
      await page.locator('.el-message--error').first().waitFor()
      await page.locator('input[data-test=user-email]').fill('viewer@example.com')
      await page.locator('input[data-test=user-name]').fill('Vera Viewer')
      await page.locator('[data-test=user-submit]').click()
      await users.locator('td', { hasText: 'viewer@example.com' }).waitFor()
      shared.viewer = { email: 'viewer@example.com', password: 'a-long-password-1' }
      // API token: the secret is shown once, with a copy button.
      await page.locator('.el-tabs__item', { hasText: 'API tokens' }).click()
      await page.locator('input[data-test=token-name]').fill('ci-import')
      await page.locator('[data-test=token-create]').click()
      const secret = await page.locator('[data-test=copy-value]').first().textContent()
      assert(secret && secret.trim().length >= 16, `token secret looks wrong: ${secret}`)
      await page.locator('[data-test=tokens-table] td', { hasText: 'ci-import' }).waitFor()
      // Tenants: the platform operator creates one and gets the owner's one-time password.
      await page.locator('.el-tabs__item', { hasText: 'Tenants' }).click()
      await page.locator('[data-test=add-tenant]').click()
      await page.locator('input[data-test=tenant-name]').fill('Acme')
      await page.locator('input[data-test=tenant-slug]').fill('acme')
      await page.locator('input[data-test=tenant-owner]').fill('owner@acme.example')
      await page.locator('[data-test=tenant-submit]').click()
      await page.locator('[data-test=tenants-table] td', { hasText: 'Acme' }).first().waitFor()
      await page.locator('.el-alert', { hasText: 'owner@acme.example' }).waitFor()
      await shot('tenants')
    },
  },
  {
    name: '10-viewer-sees-no-admin',
    async run({ page, base, shared }) {
      assert(shared.viewer, 'needs the user created by 09')
      await signIn(page, base, shared.viewer, '/dashboard')
      await page.locator('[data-test=nav-inventory]').waitFor()
      assert(await page.locator('[data-test=nav-admin]').count() === 0, 'a viewer must not see Administration')
      await page.goto(`${base}/admin`)
      await page.waitForURL((u) => u.pathname === '/dashboard')
    },
  },
  {
    name: '11-cloud-accounts',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/cloud-accounts')
      await page.locator('[data-test=accounts-table]').waitFor()
      // Alibaba needs credentials: the form refuses to submit without them.
      await page.locator('[data-test=add-account]').click()
      await page.locator('input[data-test=account-name]').fill('hangzhou')
      await page.locator('[data-test=account-provider] label', { hasText: 'Alibaba Cloud' }).click()
      await page.locator('[data-test=account-submit]').click()
      await page.locator('.el-form-item__error', { hasText: 'AccessKey secret' }).waitFor()
      // The built-in local cloud needs none.
      await page.locator('[data-test=account-provider] label', { hasText: 'Local' }).click()
      await page.locator('input[data-test=account-name]').fill('local-lab')
      await page.locator('[data-test=account-submit]').click()
      await page.locator('[data-test=accounts-table] td', { hasText: 'local-lab' }).waitFor()
      // The permission check runs on the server and is recorded on the account.
      await page.locator('[data-test=check-local-lab]').click()
      await page.locator('.el-message--success', { hasText: 'all checks passed' }).waitFor()
      await page.locator('[data-test=accounts-table] td', { hasText: '— all checks passed' }).waitFor()
      // Deleting asks first; cancelling keeps the account.
      await page.locator('[data-test=delete-local-lab]').click()
      await page.locator('.el-message-box__btns button', { hasText: 'Cancel' }).click()
      await page.locator('[data-test=accounts-table] td', { hasText: 'local-lab' }).waitFor()
      await page.locator('[data-test=delete-local-lab]').click()
      await page.locator('.el-message-box__btns button', { hasText: 'Delete' }).click()
      await page.locator('.el-message--success', { hasText: 'deleted' }).waitFor()
      await page.locator('[data-test=accounts-table] td', { hasText: 'local-lab' }).waitFor({ state: 'detached' })
    },
  },
  {
    name: '12-discovery-install-command',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/discovery')
      const cmd = await page.locator('[data-test=copy-value]').first().textContent()
      assert(cmd === `ferry agent register --server ${base} --token <TOKEN>`, `install command: ${cmd}`)
      await page.locator('[data-test=agents-table]').waitFor()
      await page.locator('.el-tabs__item', { hasText: 'Imports' }).click()
      await page.locator('[data-test=imports-table]').waitFor()
    },
  },
  {
    // The application-level graph: one application (made here from the
    // inventory) and the unassigned hosts of each environment; clicking the
    // application drills into its hosts.
    name: '13-topology-groups-by-application',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/inventory')
      const rows = page.locator('[data-test=hosts-table] .el-table__body-wrapper tbody tr')
      await rows.first().filter({ hasText: 'host-00000' }).waitFor()
      for (let i = 0; i < 10; i++) await rows.nth(i).locator('.el-checkbox').click()
      assert(new URL(page.url()).pathname === '/inventory', 'ticking a row must not open the host')
      await page.locator('[data-test=group-app]', { hasText: '(10)' }).click()
      await page.locator('.el-message-box__input input').fill('billing')
      await page.locator('.el-message-box__btns button', { hasText: 'Create' }).click()
      await page.locator('.el-message--success', { hasText: 'billing' }).waitFor()
      await page.locator('[data-test=nav-topology]').click()
      await page.waitForURL(/\/topology/)
      // billing and the four environments' unassigned hosts (seed.mjs).
      await page.locator(`[data-test=topology][data-rendered=true][data-level=applications][data-hosts="${HOSTS}"][data-nodes="5"]`).waitFor()
      await page.locator('[data-test=topology-summary]', { hasText: `${HOSTS} hosts` }).waitFor()
      await page.locator('[data-test=graph] canvas').first().waitFor()
      const height = await page.evaluate(() => document.querySelector('[data-test=graph]')?.getBoundingClientRect().height ?? 0)
      assert(height > 300, 'the graph area is too small')
      await tapNode(page, (n) => n.data('name') === 'billing')
      await page.locator('[data-test=topology][data-rendered=true][data-level=hosts][data-hosts="10"][data-nodes="10"]').waitFor()
      await page.locator('[data-test=crumb-focus]', { hasText: 'billing' }).waitFor()
      await page.locator('[data-test=crumb-all]').click()
      await page.locator('[data-test=topology][data-rendered=true][data-level=applications][data-nodes="5"]').waitFor()
    },
  },
  {
    name: '14-assessment-plans-migrations-empty-states',
    async run({ page, base, server, shot }) {
      await signIn(page, base, server.admin, '/assessment')
      await page.locator('[data-test=assessment-table]', { hasText: 'No assessments yet' }).waitFor()
      await page.locator('[data-test=nav-plans]').click()
      await page.locator('[data-test=plans-empty]').waitFor()
      await page.locator('[data-test=nav-migrations]').click()
      await page.locator('[data-test=migrations-table]', { hasText: 'No migrations yet' }).waitFor()
      // The same screens read in Chinese.
      await page.locator('[data-test=lang]').first().click()
      await page.locator('.el-select-dropdown__item', { hasText: '简体中文' }).click()
      await page.locator('[data-test=migrations-table]', { hasText: '暂无迁移任务' }).waitFor()
      await shot('zh')
      await page.locator('[data-test=nav-dashboard]').click()
      await page.locator('[data-test=stat-hosts]').waitFor()
      await page.locator('.el-card__header', { hasText: '就绪情况' }).waitFor()
    },
  },
  {
    name: '15-host-edit-and-delete',
    async run({ page, base, server, shared }) {
      const created = await shared.api.gql('mutation { createHost(input: { name: "scratch-01", os: "Rocky Linux 9" }) { id } }')
      const id = created.data.createHost.id
      await signIn(page, base, server.admin, `/hosts/${id}`)
      await page.locator('[data-test=host-name]', { hasText: 'scratch-01' }).waitFor()
      await page.locator('[data-test=host-edit]').click()
      await page.locator('[data-test=edit-environment]').click()
      await page.locator('.el-select-dropdown__item:visible', { hasText: 'Staging' }).click()
      await page.locator('input[data-test=edit-owner]').fill('payments-team')
      await page.locator('[data-test=edit-save]').click()
      await page.locator('.el-message--success', { hasText: 'Saved' }).waitFor()
      const facts = page.locator('[data-test=host-facts]')
      await facts.filter({ hasText: 'payments-team' }).waitFor()
      await facts.filter({ hasText: 'Staging' }).waitFor()
      // The change is stored: a fresh load shows it.
      await page.reload()
      await page.locator('[data-test=host-facts]', { hasText: 'payments-team' }).waitFor()
      // Delete asks first, then returns to the inventory without the host.
      await page.locator('[data-test=host-delete]').click()
      await page.locator('.el-message-box__btns button', { hasText: 'Delete' }).click()
      await page.waitForURL((u) => u.pathname === '/inventory')
      await page.locator('input[data-test=search]').fill('scratch-01')
      await page.locator('[data-test=total]', { hasText: '0 in total' }).waitFor()
    },
  },
  {
    // The whole migration of one host through the UI: a real agent process
    // replicates the bootable Debian test image (scripts/testimage/build.sh);
    // the user starts the migration in the wizard, watches it reach 100 %,
    // test-launches — a real qemu boot whose serial console and check
    // results the screen shows —, cuts over (its downtime shown), rolls back.
    name: '20-migration-lifecycle',
    async run({ page, base, server, shared, shot }) {
      const { spawn, execFileSync } = await import('node:child_process')
      const { mkdtemp } = await import('node:fs/promises')
      const { tmpdir, hostname } = await import('node:os')
      const { join, resolve } = await import('node:path')
      const bin = process.env.FERRY_BIN
      const dir = await mkdtemp(join(tmpdir(), 'ferry-e2e-agent-'))
      const img = join(dir, 'vda.img')
      // Built once and cached outside the clone (≈ 3 min the first time).
      const base0 = execFileSync(resolve('../scripts/testimage/build.sh'), ['base'], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 15 * 60000 }).toString().trim()
      execFileSync('cp', ['--sparse=always', base0, img])
      const api = shared.api ?? new Api(base)
      if (!shared.api) await api.login(server.admin.email, server.admin.password)
      const tok = await api.gql('mutation { createRegistrationToken(input: {name: "e2e-agent"}) { token } }')
      const state = join(dir, 'state')
      execFileSync(bin, ['agent', 'register', '--server', base, '--token', tok.data.createRegistrationToken.token, '--state', state])
      const agent = spawn(bin, ['agent', 'run', '--state', state, '--disk-source', `vda=${img}`, '--sample-every', '5s'], { stdio: 'ignore' })
      try {
        const name = await pollUntil(async () => {
          const r = await api.gql('{ hosts(first: 5, where: { hasAgent: true }) { edges { node { name disks { name } } } } }')
          const h = r.data.hosts.edges.map((e) => e.node).find((n) => n.disks?.some((d) => d.name === 'vda'))
          return h?.name
        }, { timeoutMs: 60000, what: 'the agent host with disk vda' })
        assert(name === hostname() || name, 'agent host has a name')
        await signIn(page, base, server.admin, '/dashboard')
        const before = Number(await page.locator('[data-test=stat-migrations]').innerText())
        await page.locator('[data-test=nav-migrations]').click()
        await page.locator('[data-test=start-migration]').click()
        await page.locator('input[data-test=wizard-search]').fill(name)
        await page.locator(`[data-test="wizard-host-${name}"]`).click()
        await page.locator('[data-test=wizard-next]').click()
        await page.locator('[data-test=wizard-sync]').waitFor()
        await page.locator('[data-test=wizard-next]').click()
        await page.locator('[data-test=wizard-review]', { hasText: '1 migration' }).waitFor()
        await page.locator('[data-test=wizard-start]').click()
        // Progress arrives over the migrationProgress subscription (websocket), not by polling.
        await page.locator('[data-test=migrations-live][data-streaming=true]').waitFor({ timeout: 30000 })
        await page.locator(`[data-test="progress-${name}"]`, { hasText: '100%' }).waitFor({ timeout: 300000 })
        await shot('synced')
        const confirm = () => page.locator('.el-message-box__btns .el-button--primary').click()
        await page.locator(`[data-test="test-launch-${name}"]`).click()
        await confirm()
        // The test launch boots (adapt, boot, health checks) before the
        // cutover is offered.
        await page.locator(`[data-test="cutover-${name}"]`).waitFor({ timeout: 480000 })
        await page.locator('[data-test=migrations-table] tr', { hasText: name }).locator('.el-table__expand-icon').first().click()
        await page.locator('[data-test=launch-check][data-check=console][data-passed=true]').first().waitFor({ timeout: 30000 })
        await page.locator('[data-test=launch-check][data-check=adapt][data-passed=true]').first().waitFor()
        await page.locator('[data-test=launch-console] summary').first().click()
        // The excerpt ends where the console check passed: the login prompt or
        // systemd's "Reached target multi-user.target", whichever came first.
        await page.locator('[data-test=launch-console][open] pre', { hasText: /login:|Reached target/ }).first().waitFor()
        await shot('test-launch-console')
        await page.locator(`[data-test="cutover-${name}"]`).click()
        await confirm()
        await page.locator('[data-test=migrations-table] .el-tag', { hasText: 'Cut over' }).waitFor({ timeout: 480000 })
        await page.locator('[data-test=launch-downtime]', { hasText: 'Downtime' }).first().waitFor({ timeout: 30000 })
        await shot('cut-over')
        await page.locator(`[data-test="rollback-${name}"]`).click()
        await confirm()
        await page.locator('[data-test=migrations-table] .el-tag', { hasText: 'Rolled back' }).waitFor({ timeout: 60000 })
        await page.locator('[data-test=nav-dashboard]').click()
        await page.locator('[data-test=stat-migrations]', { hasText: String(before + 1) }).waitFor()
      } finally {
        agent.kill('SIGTERM')
      }
    },
  },
  {
    // The same migration to Alibaba Cloud, against `ferry ecsemu`: the user
    // adds the account with its vSwitch and source network, the check calls
    // the emulated ECS through the real SDK, the migration's gateway is a
    // real ferry gateway on an emulated instance that registers upward, the
    // launches go through a repair instance and an image; after the
    // rollback the emulator holds only the replica and its snapshots.
    name: '20b-alibaba-migration',
    async run({ page, base, server, shared, shot }) {
      const { spawn, execFileSync } = await import('node:child_process')
      const { mkdtemp, open } = await import('node:fs/promises')
      const { tmpdir } = await import('node:os')
      const { join } = await import('node:path')
      const { randomBytes } = await import('node:crypto')
      const { createServer } = await import('node:net')
      const bin = process.env.FERRY_BIN
      const dir = await mkdtemp(join(tmpdir(), 'ferry-e2e-ecs-'))
      const port = await new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) }) })
      const admin = randomBytes(12).toString('hex')
      let out = ''
      const emu = spawn(bin, ['ecsemu', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'ecs'), '--admin-token', admin, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] })
      emu.stdout.on('data', (b) => { out += b.toString() })
      const img = join(dir, 'vda.img')
      const f = await open(img, 'w')
      await f.truncate(64 << 20)
      await f.close()
      execFileSync('mkfs.ext4', ['-q', '-F', img])
      const g = await open(img, 'r+')
      await g.write(randomBytes(4 << 20), 0, 4 << 20, 12 << 20)
      await g.close()
      const api = shared.api ?? new Api(base)
      if (!shared.api) await api.login(server.admin.email, server.admin.password)
      const tok = await api.gql('mutation { createRegistrationToken(input: {name: "e2e-ecs-agent"}) { token } }')
      const state = join(dir, 'state')
      execFileSync(bin, ['agent', 'register', '--server', base, '--token', tok.data.createRegistrationToken.token, '--state', state])
      const agent = spawn(bin, ['agent', 'run', '--state', state, '--disk-source', `vda=${img}`, '--sample-every', '5s'], { stdio: 'ignore' })
      const inventory = async () => (await fetch(`http://127.0.0.1:${port}/_ecsemu/v1/inventory`, { headers: { Authorization: `Bearer ${admin}` } })).json()
      const n = (list) => (list ?? []).length // Go encodes an empty list as null
      try {
        const vswitch = await pollUntil(() => out.match(/vSwitch (vsw-[a-z0-9]+)/)?.[1], { timeoutMs: 20000, what: 'ferry ecsemu to start' })
        const name = await pollUntil(async () => {
          const r = await api.gql('{ hosts(first: 5, where: { hasAgent: true }) { edges { node { name disks { name } } } } }')
          return r.data.hosts.edges.map((e) => e.node).find((n) => n.disks?.some((d) => d.name === 'vda'))?.name
        }, { timeoutMs: 60000, what: 'the agent host with disk vda' })
        await signIn(page, base, server.admin, '/cloud-accounts')
        await page.locator('[data-test=add-account]').click()
        await page.locator('input[data-test=account-name]').fill('ecs-emulated')
        await page.locator('[data-test=account-provider] label', { hasText: 'Alibaba Cloud' }).click()
        await page.locator('input[data-test=account-region]').fill('cn-hangzhou')
        await page.locator('input[data-test=account-key]').fill('LTAI5tEmulatorRootKey')
        await page.locator('input[data-test=account-secret]').fill('ecsemu-root-secret')
        await page.locator('input[data-test=account-vswitch]').fill(vswitch)
        await page.locator('input[data-test=account-sources]').fill('127.0.0.0/8')
        await page.locator('input[data-test=account-endpoint]').fill(`http://127.0.0.1:${port}`)
        // The disk is an empty ext4 filesystem, which no firmware boots: with
        // the boot check on (the default) the test launch would rightly fail
        // (jobs/migrationtest TestAlibabaLaunchMustBoot). This scenario is
        // about the migration's path through ECS, so it turns the check off,
        // and the form and every launch say so.
        await page.locator('[data-test=account-boot-check]').click()
        await page.locator('[data-test=account-boot-check-off]').waitFor()
        await page.locator('[data-test=account-submit]').click()
        await page.locator('[data-test=accounts-table] td', { hasText: 'ecs-emulated' }).waitFor()
        await page.locator('[data-test=check-ecs-emulated]').click()
        await page.locator('.el-message--success', { hasText: 'all checks passed' }).waitFor({ timeout: 30000 })
        await shot('account-checked')
        await page.locator('[data-test=nav-migrations]').click()
        await page.locator('[data-test=start-migration]').click()
        await page.locator('input[data-test=wizard-search]').fill(name)
        await page.locator(`[data-test="wizard-host-${name}"]`).click()
        await page.locator('[data-test=wizard-next]').click()
        await page.locator('[data-test=wizard-sync]').waitFor()
        await page.locator('[data-test=wizard-target]').click()
        await page.locator('[data-test=wizard-target-ecs-emulated]').click()
        await page.locator('[data-test=wizard-next]').click()
        await page.locator('[data-test=wizard-start]').click()
        // The host may have migrated before (scenario 20): this migration's row is the one to Alibaba.
        const row = page.locator('[data-test=migrations-table] .el-table__row', { hasText: 'ecs-emulated' })
        await row.locator(`[data-test="progress-${name}"]`, { hasText: '100%' }).waitFor({ timeout: 120000 })
        const synced = await inventory()
        assert(n(synced.instances) === 1 && synced.processes === 1, `while syncing the emulator runs one gateway: ${JSON.stringify(synced)}`)
        await shot('synced-to-ecs')
        const confirm = () => page.locator('.el-message-box__btns .el-button--primary').click()
        await row.locator(`[data-test="test-launch-${name}"]`).click()
        await confirm()
        await row.locator(`[data-test="cutover-${name}"]`).waitFor({ timeout: 120000 })
        // The launch shows its instance type and where it came from (no
        // assessment here: the inventory's size), and that its boot was not
        // watched, by the account's setting.
        await row.locator('.el-table__expand-icon').click()
        await page.locator('[data-test=launch-type]', { hasText: 'ecs.' }).first().waitFor()
        await page.locator('[data-test=launch-sizing]', { hasText: 'DescribeInstanceTypes' }).first().waitFor()
        await page.locator('[data-test=launch-check][data-check=boot]', { hasText: 'boot_check=off' }).first().waitFor()
        await shot('test-launch-on-ecs')
        await row.locator(`[data-test="cutover-${name}"]`).click()
        await confirm()
        await row.locator('.el-tag', { hasText: 'Cut over' }).waitFor({ timeout: 180000 })
        await shot('cut-over-to-ecs')
        await row.locator(`[data-test="rollback-${name}"]`).click()
        await confirm()
        await row.locator('.el-tag', { hasText: 'Rolled back' }).waitFor({ timeout: 120000 })
        const left = await pollUntil(async () => {
          const inv = await inventory()
          return inv.processes === 0 ? inv : null
        }, { timeoutMs: 60000, what: 'the gateway to be gone' })
        assert(n(left.instances) === 0 && n(left.images) === 0 && n(left.security_groups) === 0 && n(left.disks) === 1,
          `after the rollback the emulator holds ${JSON.stringify(left)}`)
        // The launches went through ECS: a repair instance and an image for
        // each (test launch, cutover), besides the gateway's instance.
        const calls = await (await fetch(`http://127.0.0.1:${port}/_ecsemu/v1/calls`, { headers: { Authorization: `Bearer ${admin}` } })).json()
        assert(calls['ecs:CreateImage'] >= 2 && calls['ecs:RunInstances'] >= 5 && calls['ecs:CreateSnapshot'] >= 1,
          `the emulator's calls: ${JSON.stringify(calls)}`)
      } finally {
        const exited = (p) => p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r))
        agent.kill('SIGTERM')
        emu.kill('SIGTERM') // the emulator stops its instances (the gateway) with it
        await Promise.all([exited(agent), exited(emu)])
        const { rm } = await import('node:fs/promises')
        await rm(dir, { recursive: true, force: true })
      }
    },
  },
  {
    // Planning: two production hosts share an application (one move group);
    // the consultant fills the constraints form and generates a plan.
    name: '21-generate-a-plan',
    async run({ page, base, server, shared, shot }) {
      const api = shared.api
      const d = await api.gql('{ hosts(first: 2, where: {nameIn: ["host-00100", "host-00104"]}) { edges { node { id } } } }')
      const ids = d.data.hosts.edges.map((e) => e.node.id)
      assert(ids.length === 2, 'seeded hosts host-00100 and host-00104 are missing (run 02 first)')
      await api.gql('mutation($ids: [ID!]) { createApplication(input: {name: "e2e-pair", hostIDs: $ids}) { id } }', { ids })
      await signIn(page, base, server.admin, '/plans')
      await page.locator('[data-test=new-plan]').first().click()
      await page.locator('input[data-test=plan-name]').fill('E2E waves')
      await page.locator('input[data-test=plan-bandwidth]').fill('500Mbps')
      await page.locator('[data-test=plan-max-hosts] input, input[data-test=plan-max-hosts]').first().fill('40')
      await shot('form')
      await page.locator('[data-test=generate-submit]').click()
      await page.locator('[data-test=plan-status][data-status=ready], [data-test=plan-status][data-status=infeasible]').waitFor()
      await page.locator('[data-test=plan-metrics]', { hasText: 'hosts placed' }).waitFor()
      const waves = await page.locator('[data-test=wave-summary] [data-test=wave-row]').count()
      assert(waves >= 3, `a 40-host cap over ${HOSTS} hosts needs at least 3 waves, got ${waves}`)
      // One row per wave: the host counts add up to the plan's placed hosts.
      const counts = await page.locator('[data-test=wave-summary] [data-test=wave-row]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-hosts'))))
      const metrics = await page.locator('[data-test=plan-metrics]').innerText()
      const placed = Number(/(\d+)\/(\d+) hosts placed/.exec(metrics)?.[1])
      assert(counts.reduce((a, b) => a + b, 0) === placed, `waves hold ${counts} hosts, the plan placed ${placed}`)
      const share = Number(/([\d.]+) ?% of dependency/.exec(metrics)?.[1])
      assert(share >= 0 && share <= 100, `crossing share ${share} is not a percentage: ${metrics}`)
      // The chosen wave's hosts with their reasons, paged.
      const reasons = await page.locator('[data-test=wave-members] .reason').allTextContents()
      assert(reasons.length > 0 && reasons.every((r) => r.trim().length > 0), 'every member shows its reason')
      let pairSeen = false
      for (let w = 1; w <= waves && !pairSeen; w++) {
        await page.locator(`[data-test=wave-row][data-ordinal="${w}"]`).click()
        pairSeen = (await page.locator('[data-test=wave-members]').innerText()).includes('e2e-pair')
      }
      assert(pairSeen, 'the application shows in a reason')
      shared.planName = 'E2E waves'
    },
  },
  {
    // Moving one host of a two-host group shows the violation first and
    // saves nothing; "Move anyway" then saves it, marked as moved by hand.
    name: '22-move-a-host-between-waves',
    async run({ page, base, server, shot }) {
      await signIn(page, base, server.admin, '/plans')
      await page.locator('[data-test=plan-status][data-status=ready], [data-test=plan-status][data-status=infeasible]').waitFor()
      // Find host-00100's wave through the member filter of each wave.
      const waves = await page.locator('[data-test=wave-summary] [data-test=wave-row]').count()
      for (let w = 1; w <= waves; w++) {
        await page.locator(`[data-test=wave-row][data-ordinal="${w}"]`).click()
        await page.locator('input[data-test=member-filter]').fill('host-00100')
        if (await page.locator('[data-test=move-host][data-host=host-00100]').count()) break
      }
      const manualBefore = await page.locator('[data-test=wave-members] tr', { hasText: 'Moved by hand' }).count()
      await page.locator('[data-test=move-host][data-host=host-00100]').click()
      await page.locator('[data-test=move-to]').click()
      await page.locator('.el-select-dropdown__item:visible').first().click()
      await page.locator('[data-test=move-check]').click()
      await page.locator('[data-test=move-violations]', { hasText: 'group' }).waitFor()
      await page.locator('[data-test=move-violations]', { hasText: 'nothing has been saved' }).waitFor()
      await shot('violations')
      const manualNow = await page.locator('[data-test=wave-members] tr', { hasText: 'Moved by hand' }).count()
      assert(manualNow === manualBefore, 'a move with violations was saved before it was confirmed')
      await page.locator('[data-test=move-confirm]').click()
      await page.locator('.el-message--success', { hasText: 'host-00100 moved to wave' }).waitFor()
      let found = false
      for (let w = 1; w <= waves + 1 && !found; w++) {
        if (!(await page.locator(`[data-test=wave-row][data-ordinal="${w}"]`).count())) break
        await page.locator(`[data-test=wave-row][data-ordinal="${w}"]`).click()
        await page.locator('input[data-test=member-filter]').fill('host-00100')
        found = (await page.locator('[data-test=wave-members] tr', { hasText: 'host-00100' }).filter({ hasText: 'Moved by hand' }).filter({ hasText: 'moved by hand to wave' }).count()) > 0
      }
      assert(found, 'host-00100 is shown moved by hand, with the note in its reason')
    },
  },
  {
    // Running a wave from the plans screen (issue 13): "Run this wave" with
    // a cap, a cutover time tomorrow and an admin's approval; the runbook
    // lists every member with its run state, and the counts on the screen
    // are the database's (read back through the API). The seeded hosts
    // have no agent: the wave says so and waits for them. Pause and resume
    // change the wave's status.
    name: '22b-run-a-wave-and-follow-its-runbook',
    async run({ page, base, server, shared, shot }) {
      const api = shared.api
      await signIn(page, base, server.admin, '/plans')
      await page.locator('[data-test=plan-status][data-status=ready], [data-test=plan-status][data-status=infeasible]').waitFor()
      const last = await page.locator('[data-test=wave-summary] [data-test=wave-row]').count()
      await page.locator(`[data-test=wave-row][data-ordinal="${last}"]`).click()
      const hosts = Number(await page.locator(`[data-test=wave-row][data-ordinal="${last}"]`).getAttribute('data-hosts'))
      await page.locator('[data-test=run-wave]').click()
      await page.locator('[data-test=run-parallel] input').fill('2')
      const tomorrow = new Date(Date.now() + 24 * 3600 * 1000)
      // The browser's datetime-local input takes local wall time.
      const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16)
      await page.locator('input[data-test=run-cutover-at], [data-test=run-cutover-at] input').first().fill(local)
      await page.locator('[data-test=run-approver]').click()
      await page.locator('.el-select-dropdown__item:visible', { hasText: 'admin' }).click()
      await page.locator('textarea[data-test=run-manual-steps], [data-test=run-manual-steps] textarea').first().fill('freeze changes')
      await page.locator('[data-test=run-wave-submit]').click()
      await page.locator('.el-message--success', { hasText: 'hosts started' }).waitFor()
      await page.locator('[data-test=wave-run-status][data-status=replicating]').waitFor()
      // Changes arrive over the waveProgress subscription (websocket).
      await page.locator('[data-test=wave-live][data-streaming=true]').waitFor({ timeout: 30000 })
      await page.locator('[data-test=runbook] [data-test=runbook-host]').first().waitFor()
      await shot('runbook')
      const rows = await page.locator('[data-test=runbook] [data-test=runbook-host]').count()
      assert(rows === hosts, `the runbook lists ${rows} hosts, the wave has ${hosts}`)
      const counts = await page.locator('[data-test=wave-state-count]').evaluateAll((els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-state'), Number(e.getAttribute('data-count'))])))
      // The same figures from the database.
      const plans = await api.gql('{ plans(first: 1, where: {name: "E2E waves"}) { edges { node { waves { id ordinal status approverRole runCutoverAt members { runState } } } } } }')
      const wave = plans.data.plans.edges[0].node.waves.find((w) => w.ordinal === last)
      const db = {}
      for (const m of wave.members) db[m.runState] = (db[m.runState] ?? 0) + 1
      assert(JSON.stringify(Object.entries(counts).sort()) === JSON.stringify(Object.entries(db).sort()), `screen ${JSON.stringify(counts)} vs database ${JSON.stringify(db)}`)
      assert(wave.status === 'replicating' && wave.approverRole === 'admin', `wave ${wave.status} approver ${wave.approverRole}`)
      assert(Math.abs(new Date(wave.runCutoverAt).getTime() - tomorrow.getTime()) < 120000, `cutover at ${wave.runCutoverAt}, asked for ${tomorrow.toISOString()}`)
      if (db.no_agent) await page.locator('[data-test=wave-run-message]', { hasText: 'no agent' }).waitFor()
      await page.locator('[data-test=wave-progress]', { hasText: 'waiting for a user with role admin' }).waitFor()
      // The manual step, ticked off on the screen, is on the row with who did it.
      await page.locator('[data-test=manual-step][data-done=no] .el-checkbox').click()
      await page.locator('[data-test=manual-step][data-done=yes]').waitFor()
      const ticked = await api.gql('query($id: ID!) { node(id: $id) { ... on Wave { manualSteps { name doneBy } } } }', { id: wave.id })
      assert(ticked.data.node.manualSteps[0].doneBy === server.admin.email, `manual step ${JSON.stringify(ticked.data.node.manualSteps)}`)
      await page.locator('[data-test=pause-wave]').click()
      await page.locator('[data-test=wave-run-status][data-status=paused]').waitFor()
      await page.locator('[data-test=resume-wave]').click()
      await page.locator('[data-test=wave-run-status][data-status=replicating]').waitFor()
    },
  },
  {
    // Assessment: run it for Alibaba Cloud and read the totals.
    name: '23-run-assessment-and-totals',
    async run({ page, base, server, shot }) {
      await signIn(page, base, server.admin, '/assessment')
      await page.locator('[data-test=run-assessment]').click()
      await page.locator('.el-message--success', { hasText: 'hosts assessed' }).waitFor()
      const n = Number(await page.locator('[data-test=totals-hosts]').textContent())
      assert(n >= HOSTS, `totals count ${n} hosts, want at least ${HOSTS}`)
      await page.locator('[data-test=assessment-totals]', { hasText: 'Monthly cost' }).waitFor()
      await page.locator('[data-test=assessment-table] .el-table__body-wrapper tbody tr').first().waitFor()
      await shot('totals')
    },
  },
  {
    // The dashboard's cost is the server's total over every assessment: the
    // scenario adds up every page of assessments through the API (the
    // stored rows) and compares it with the figure on the screen.
    name: '25-dashboard-cost-equals-the-database',
    async run({ page, base, server, shared, shot }) {
      const api = shared.api
      let after = null
      let right = 0
      let n = 0
      for (;;) {
        const r = await api.gql('query($a: Cursor) { assessments(first: 1000, after: $a, where: {target: "alibaba"}) { pageInfo { hasNextPage endCursor } edges { node { monthlyCostRightSized } } } }', { a: after })
        for (const e of r.data.assessments.edges) { right += e.node.monthlyCostRightSized; n++ }
        if (!r.data.assessments.pageInfo.hasNextPage) break
        after = r.data.assessments.pageInfo.endCursor
      }
      assert(n >= HOSTS, `only ${n} assessments stored`)
      await signIn(page, base, server.admin, '/dashboard')
      const stat = page.locator('[data-test=stat-cost]')
      await stat.waitFor()
      const shown = Number(await stat.getAttribute('data-value'))
      assert(Math.abs(shown - right) < 0.01, `dashboard shows ${shown}, the stored assessments add up to ${right}`)
      const text = await stat.innerText()
      assert(text.replace(/[^\d]/g, '') === String(Math.round(right)), `the figure reads ${text}, want ${Math.round(right)}`)
      await shot('cost')
    },
  },
  {
    // Reports from the UI: the workbook and the PDF download, the PDF reads
    // back with pdftotext and holds the estate's host count.
    name: '26-report-download',
    async run({ page, base, server, shared }) {
      const { execFileSync } = await import('node:child_process')
      const { mkdtemp, readFile } = await import('node:fs/promises')
      const { tmpdir } = await import('node:os')
      const { join } = await import('node:path')
      const dir = await mkdtemp(join(tmpdir(), 'ferry-e2e-report-'))
      await signIn(page, base, server.admin, '/assessment')
      await page.locator('[data-test=assessment-totals]').waitFor()
      for (const [btn, magic] of [['download-xlsx', 'PK'], ['download-pdf', '%PDF']]) {
        const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 120000 }), page.locator(`[data-test=${btn}]`).click()])
        const file = join(dir, dl.suggestedFilename())
        await dl.saveAs(file)
        const head = (await readFile(file)).subarray(0, 4).toString('latin1')
        assert(head.startsWith(magic), `${dl.suggestedFilename()} starts with ${JSON.stringify(head)}`)
        if (magic === '%PDF') {
          const text = execFileSync('pdftotext', [file, '-']).toString()
          const hosts = (await shared.api.gql('{ hosts(first: 0) { totalCount } }')).data.hosts.totalCount
          assert(text.includes(String(hosts)), `the PDF does not show the ${hosts} hosts`)
        }
      }
    },
  },
  {
    // Business case: the figures are the server's; changing an assumption
    // changes the on-premises compute to vCPUs × the new rate.
    name: '27-business-case',
    async run({ page, base, server, shared, shot }) {
      const api = shared.api
      let cpus = 0
      let after = null
      for (;;) {
        const r = await api.gql('query($a: Cursor) { hosts(first: 1000, after: $a) { pageInfo { hasNextPage endCursor } edges { node { cpus } } } }', { a: after })
        for (const e of r.data.hosts.edges) cpus += e.node.cpus
        if (!r.data.hosts.pageInfo.hasNextPage) break
        after = r.data.hosts.pageInfo.endCursor
      }
      await signIn(page, base, server.admin, '/business-case')
      const counts = page.locator('[data-test=case-counts]')
      await counts.waitFor()
      const bc = (await api.gql('{ businessCase { hosts idleHosts zombieHosts onPremises { compute } } }')).data.businessCase
      assert(await counts.getAttribute('data-hosts') === String(bc.hosts), 'host count differs from the API')
      const before = Number(await page.locator('[data-test=on-compute]').getAttribute('data-value'))
      assert(Math.abs(before - cpus * 12) < 0.01, `on-premises compute ${before}, want ${cpus} vCPUs × 12`)
      await page.locator('[data-test=a-computePerVcpuMonth] input').fill('20')
      await page.locator('[data-test=case-recompute]').click()
      await page.waitForFunction((want) => Math.abs(Number(document.querySelector('[data-test=on-compute]')?.getAttribute('data-value')) - want) < 0.01, cpus * 20)
      await page.locator('[data-test=case-cashflow] [data-test=cumulative]').first().waitFor()
      await shot('case')
    },
  },
  {
    // At 1,280 px the main table of each screen fits: no horizontal scroll.
    name: '28-screens-fit-1280px',
    async run({ page, base, server }) {
      await page.setViewportSize({ width: 1280, height: 800 })
      await signIn(page, base, server.admin, '/inventory')
      const screens = [['/inventory', 'hosts-table'], ['/assessment', 'assessment-table'], ['/plans', 'wave-summary'], ['/audit', 'audit-table'],
        ['/discovery', 'agents-table'], ['/admin', 'users-table'], ['/migrations', 'migrations-table']]
      const over = []
      for (const [path, table] of screens) {
        await page.goto(`${base}${path}`)
        await page.locator(`[data-test=${table}] .el-table__body-wrapper`).first().waitFor()
        await page.waitForFunction((t) => !document.querySelector(`[data-test=${t}] .el-loading-mask`), table)
        const m = await page.evaluate((t) => {
          const w = document.querySelector(`[data-test=${t}] .el-table__body-wrapper .el-scrollbar__wrap`)
          return w ? { scroll: w.scrollWidth, client: w.clientWidth } : null
        }, table)
        if (!m || m.scroll > m.client + 1) over.push(`${path}: ${JSON.stringify(m)}`)
      }
      assert(over.length === 0, `tables scroll sideways at 1,280 px: ${over.join('; ')}`)
    },
  },
  {
    // Chinese: domain texts are translated, and a CJK font is installed
    // (make test's APT_PKGS): two different characters must render as
    // different glyphs, not as the same missing-glyph box.
    name: '29-chinese-domain-texts-and-font',
    async run({ page, base, server, shot }) {
      await signIn(page, base, server.admin, '/assessment')
      await page.locator('[data-test=lang]').first().click()
      await page.locator('.el-select-dropdown__item', { hasText: '简体中文' }).click()
      await page.locator('[data-test=assessment-table] [data-test=finding]', { hasText: '终止支持' }).first().waitFor()
      const findings = await page.locator('[data-test=assessment-table] [data-test=finding]').allTextContents()
      assert(!findings.some((f) => /reached end of life|switch network to DHCP/.test(f)), `English domain text in Chinese: ${findings.slice(0, 3)}`)
      const distinct = await page.evaluate(() => {
        const draw = (ch) => {
          const c = document.createElement('canvas')
          c.width = c.height = 40
          const g = c.getContext('2d')
          g.font = '32px sans-serif'
          g.fillText(ch, 2, 32)
          return Array.from(g.getImageData(0, 0, 40, 40).data).join(',')
        }
        return draw('中') !== draw('文') && draw('中') !== draw('\uffff')
      })
      assert(distinct, 'Chinese characters render as identical boxes: no CJK font (fonts-wqy-microhei)')
      await shot('zh-assessment')
      // Plan reasons are codes translated here too (the language choice persists).
      await page.goto(`${base}/plans`)
      await page.locator('[data-test=plan-status][data-status=ready], [data-test=plan-status][data-status=infeasible]').waitFor()
      await page.locator('[data-test=wave-members] .reason', { hasText: /[\u4e00-\u9fff]/ }).first().waitFor()
      const reasons = await page.locator('[data-test=wave-members] .reason').allTextContents()
      // A move confirmed by hand (scenario 22) quotes the violations as the planner wrote them.
      const english = reasons.filter((r) => !r.includes('已手动') && /moves with|depends on|could move from|no dependencies|the first with room/.test(r))
      assert(reasons.length > 0 && english.length === 0, `English plan reasons in Chinese: ${english.slice(0, 3)}`)
      await shot('zh-plan-reasons')
    },
  },
  {
    // The one-time admin password (or any) is changed in the UI; the new one signs in.
    name: '30-password-change',
    async run({ page, base, shared }) {
      const email = 'pw-change@example.com'
      await shared.api.gql('mutation($in: CreateUserInput!) { createUser(input: $in, password: "first-password-123") { id } }', { in: { email, role: 'consultant' } })
      await signIn(page, base, { email, password: 'first-password-123' }, '/dashboard')
      await page.locator('[data-test=user-menu]').click()
      await page.locator('[data-test=change-password]').click()
      await page.locator('input[data-test=pw-current]').fill('first-password-123')
      await page.locator('input[data-test=pw-new]').fill('second-password-456')
      await page.locator('input[data-test=pw-repeat]').fill('second-password-456')
      await page.locator('[data-test=pw-submit]').click()
      await page.locator('.el-message--success', { hasText: 'Password changed' }).waitFor()
      const probe = new Api(base)
      await probe.login(email, 'second-password-456')
      let oldWorks = true
      try { await new Api(base).login(email, 'first-password-123') } catch { oldWorks = false }
      assert(!oldWorks, 'the old password still signs in')
    },
  },
  {
    // A tenant the server refuses to disable says why, before anyone clicks.
    name: '31-tenant-disable-explained',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/admin')
      await page.locator('.el-tabs__item', { hasText: 'Tenants' }).click()
      const refused = page.locator('[data-test=tenants-table] tr', { hasText: 'Default' }).locator('[data-test=disable-refused]')
      await refused.waitFor()
      const why = await refused.getAttribute('data-reason')
      assert(/home tenant|only tenant/.test(why), `reason: ${why}`)
    },
  },
  {
    // Applications from traffic: an estate without labels (three
    // applications of web, app and db tiers that call each other inside,
    // one call between two of them) is imported; the consultant asks for
    // suggestions, the screen's figures match the API's, and accepting one
    // labels its hosts in the database.
    name: '24-suggest-and-accept-an-application',
    async run({ page, base, server, shared, shot }) {
      const api = shared.api
      const hosts = []
      const connections = []
      for (const app of ['orders', 'ledger', 'stock']) {
        for (const tier of ['web01', 'web02', 'app01', 'app02', 'db01']) {
          hosts.push({ id: `sg-${app}-${tier}`, name: `sg-${app}-${tier}`, environment: 'production', os: 'Ubuntu 22.04', cpus: 2, memory_mib: 4096 })
        }
        for (const w of ['web01', 'web02']) for (const a of ['app01', 'app02']) connections.push({ src: `sg-${app}-${w}`, dst: `sg-${app}-${a}`, port: 8080, protocol: 'tcp', count: 4000 })
        for (const a of ['app01', 'app02']) connections.push({ src: `sg-${app}-${a}`, dst: `sg-${app}-db01`, port: 5432, protocol: 'tcp', count: 9000 })
      }
      connections.push({ src: 'sg-orders-app01', dst: 'sg-ledger-app01', port: 8443, protocol: 'tcp', count: 300 })
      await api.upload({ 'suggest-estate.json': JSON.stringify({ hosts, connections }) })
      await signIn(page, base, server.admin, '/applications')
      await page.locator('[data-test=suggest-run]').click()
      await page.locator('.el-message--success', { hasText: 'application(s) suggested' }).waitFor()
      const row = page.locator('[data-test=suggestion][data-name=sg-orders]')
      await row.waitFor()
      const d = await api.gql('{ applicationSuggestions(first: 100, where: {status: open, name: "sg-orders"}) { edges { node { id hostCount cohesion internalWeight } } } }')
      const node = d.data.applicationSuggestions.edges[0]?.node
      assert(node && node.hostCount === 5, `the API suggests sg-orders with ${node?.hostCount} hosts, want 5`)
      const shownHosts = await row.getAttribute('data-hosts')
      const shownCohesion = await row.getAttribute('data-cohesion')
      assert(shownHosts === String(node.hostCount), `screen shows ${shownHosts} hosts, API ${node.hostCount}`)
      assert(shownCohesion === `${Math.round(node.cohesion * 100)} %`, `screen shows cohesion ${shownCohesion}, API ${node.cohesion}`)
      assert(node.cohesion > 0.9 && node.internalWeight === 2 * 2 * 4000 + 2 * 9000, `evidence ${JSON.stringify(node)}`)
      await shot('suggestions')
      await page.locator('[data-test=accept][data-name=sg-orders]').click()
      await page.locator('.el-message--success', { hasText: 'Application sg-orders accepted' }).waitFor()
      await page.locator('[data-test=suggestion][data-name=sg-orders]').waitFor({ state: 'detached' })
      const labelled = await api.gql('{ hosts(first: 0, where: {hasApplicationWith: [{name: "sg-orders"}]}) { totalCount } }')
      assert(labelled.data.hosts.totalCount === 5, `the database labels ${labelled.data.hosts.totalCount} hosts sg-orders, want 5`)
    },
  },
  {
    // Runs late: the upload adds hosts, and earlier scenarios count the seeded ones.
    name: '90-discovery-upload-and-tokens',
    // The refused upload is a 400 the browser logs.
    allowConsole: [/status of 400/],
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/discovery')
      // Import an estate file through the UI: bad rows are listed with file, row and column.
      await page.locator('.el-tabs__item', { hasText: 'Imports' }).click()
      const testdata = new URL('../../discovery/importer/testdata/', import.meta.url).pathname
      await page.locator('input[data-test=upload-files]').setInputFiles([`${testdata}hosts.csv`, `${testdata}connections.csv`])
      await page.locator('[data-test=upload-submit]').click()
      await page.locator('[data-test=upload-result]').waitFor()
      const row = page.locator('[data-test=upload-errors] tr', { hasText: '10.1.0.300' }).first()
      await row.waitFor()
      const text = await row.textContent()
      assert(text.includes('hosts.csv') && text.includes('4') && text.includes('ip'), `row error: ${text}`)
      await page.locator('[data-test=imports-table] td', { hasText: 'hosts.csv, connections.csv' }).first().waitFor()
      // A file no importer knows is refused whole, with its name.
      await page.locator('input[data-test=upload-files]').setInputFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: Buffer.from('\u0000\u0001 not an estate') })
      await page.locator('[data-test=upload-submit]').click()
      await page.locator('[data-test=upload-error]', { hasText: 'notes.bin' }).waitFor()
      // A registration token: shown once with the exact install command, then revoked.
      await page.locator('.el-tabs__item', { hasText: 'Registration tokens' }).click()
      await page.locator('input[data-test=regtoken-name]').fill('e2e estate')
      await page.locator('[data-test=regtoken-create]').click()
      const cmd = await page.locator('[data-test=regtoken-command] [data-test=copy-value]').textContent()
      assert(cmd.startsWith(`ferry agent register --server ${base} --token frt_`), `install command: ${cmd}`)
      await page.locator('[data-test="revoke-token-e2e estate"]').click()
      await page.locator('.el-message-box__btns button', { hasText: 'Revoke' }).click()
      await page.locator('[data-test=tokens-table] .el-tag', { hasText: 'Revoked' }).first().waitFor()
    },
  },
  {
    // Topology at 20,000 hosts (issue 14): a generated estate (planner/estate,
    // about 200,000 connections) imported into a tenant of its own and
    // planned; the screen shows the application-level graph, its figures
    // match the API's, no two labels drawn at the default zoom overlap, and
    // a drill-down shows exactly the application's hosts.
    name: '95-topology-at-20000-hosts',
    async run({ page, base, shared, shot }) {
      const N = 20000
      const slug = 'topo20k'
      const owner = { email: 'owner@topo20k.example', password: 'topology-20000-hosts' }
      await shared.api.gql('mutation($in: CreateTenantInput!, $e: String!, $p: String!) { createTenant(input: $in, ownerEmail: $e, ownerPassword: $p) { tenant { id } } }',
        { in: { name: 'Topology 20k', slug }, e: owner.email, p: owner.password })
      const api = new Api(base)
      await api.login(owner.email, owner.password)
      const dir = await mkdtemp(join(tmpdir(), 'ferry-e2e-estate-'))
      try {
        await run(process.env.FERRY_BIN, ['estate', 'generate', '--hosts', String(N), '--seed', '1', '--out', join(dir, 'estate.json')])
        const up = await api.upload({ 'estate.json': await readFile(join(dir, 'estate.json')) })
        assert(up.hostsCreated === N, `imported ${up.hostsCreated} hosts, want ${N}`)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
      const p = await api.gql('mutation($in: GeneratePlanInput!) { generatePlan(input: $in) { id status } }',
        { in: { name: 'Topology 20k', constraints: { bandwidth: '1Gbps', maxHostsPerWave: 100 } } })
      const planId = p.data.generatePlan.id
      const plan = await pollUntil(async () => {
        const d = await api.gql('query($id: ID!) { node(id: $id) { ... on Plan { status cycles sharedServices } } }', { id: planId })
        return ['ready', 'infeasible'].includes(d.data.node.status) ? d.data.node : null
      }, { timeoutMs: 300000, intervalMs: 1000, what: 'the 20,000-host plan' })
      const total = (await api.gql('{ hosts(first: 0) { totalCount } }')).data.hosts.totalCount
      assert(total === N, `the tenant holds ${total} hosts`)

      await signIn(page, base, owner, '/topology')
      const screen = page.locator('[data-test=topology][data-rendered=true][data-level=applications]')
      await screen.waitFor({ timeout: 120000 })
      const attr = async (name) => Number(await page.locator('[data-test=topology]').getAttribute(name))
      assert(await attr('data-hosts') === total, `the screen counts ${await attr('data-hosts')} hosts, the database ${total}`)
      assert(await attr('data-cycles') === plan.cycles.length, `the screen shows ${await attr('data-cycles')} cycles, the planner found ${plan.cycles.length}`)
      // What Cytoscape holds: the page's nodes plus one standing for the rest add up to every host.
      const drawn = await page.evaluate(() => {
        const cy = document.querySelector('[data-test=graph]')._cyreg.cy
        const groups = cy.nodes().filter((n) => n.data('kind'))
        return { nodes: groups.length, hosts: groups.reduce((s, n) => s + n.data('hosts'), 0), other: groups.filter((n) => n.data('kind') === 'other').length,
          waves: cy.nodes('.wave').length, cycleEdges: cy.edges('.cycle').length }
      })
      assert(drawn.hosts === total, `the drawn nodes stand for ${drawn.hosts} hosts, the database has ${total}`)
      assert(drawn.other === 1 && drawn.nodes === (await attr('data-nodes')) + 1, `drawn ${JSON.stringify(drawn)}`)
      assert(drawn.waves > 10, `the nodes sit in ${drawn.waves} wave blocks`)
      const overlaps = await labelOverlaps(page)
      assert(overlaps.shown > 20, `only ${overlaps.shown} labels are shown at the default zoom`)
      assert(overlaps.pairs.length === 0, `labels overlap at the default zoom: ${JSON.stringify(overlaps.pairs.slice(0, 5))}`)
      await shot('applications')

      // Drill into the largest application: its host nodes are its labelled
      // hosts (shared services apart) plus unlabelled hosts its suggestion adds.
      const app = await page.evaluate(() => {
        const cy = document.querySelector('[data-test=graph]')._cyreg.cy
        const apps = cy.nodes().filter((n) => n.data('kind') === 'application').sort((a, b) => b.data('hosts') - a.data('hosts'))
        return { key: apps[0].id(), refId: apps[0].data('refId'), hosts: apps[0].data('hosts'), name: apps[0].data('name') }
      })
      await tapNode(page, (n, key) => n.id() === key, app.key)
      await page.locator(`[data-test=topology][data-rendered=true][data-level=hosts][data-hosts="${app.hosts}"]`).waitFor({ timeout: 60000 })
      const hostIds = await page.evaluate(() => {
        const cy = document.querySelector('[data-test=graph]')._cyreg.cy
        return cy.nodes().filter((n) => n.data('kind') === 'host').map((n) => n.data('refId'))
      })
      assert(hostIds.length === app.hosts, `the drill-down draws ${hostIds.length} hosts of ${app.name}, the node counted ${app.hosts}`)
      const d = await api.gql('query($ids: [ID!]!, $app: ID!) { nodes(ids: $ids) { ... on Host { id application { id } } } hosts(first: 0, where: {hasApplicationWith: [{id: $app}]}) { totalCount } }', { ids: hostIds, app: app.refId })
      const sharedIds = new Set(plan.sharedServices.map((s) => String(s.host_id)))
      const labelled = d.data.nodes.filter((h) => h.application?.id === app.refId).length
      const strangers = d.data.nodes.filter((h) => h.application && h.application.id !== app.refId)
      assert(strangers.length === 0, `the drill-down of ${app.name} shows hosts of other applications: ${JSON.stringify(strangers.slice(0, 3))}`)
      const sharedLabelled = (await api.gql('query($ids: [ID!]!) { nodes(ids: $ids) { ... on Host { application { id } } } }', { ids: [...sharedIds] })).data.nodes
        .filter((h) => h?.application?.id === app.refId).length
      assert(labelled === d.data.hosts.totalCount - sharedLabelled, `${labelled} of the drawn hosts carry ${app.name}; the database labels ${d.data.hosts.totalCount} (${sharedLabelled} shared)`)
      const inner = await labelOverlaps(page)
      assert(inner.pairs.length === 0, `labels overlap in the drill-down: ${JSON.stringify(inner.pairs.slice(0, 5))}`)
      await shot('drill-down')
    },
  },
  {
    name: '11-operator-console-suspend-resume',
    async run({ page, base, server, shot }) {
      const api = new Api(base)
      await api.login(server.admin.email, server.admin.password)
      await api.gql(`mutation { createTenant(input: {name: "Globex", slug: "globex"}, ownerEmail: "owner@globex.example", ownerPassword: "globex-owner-pw-1") { tenant { id } } }`)
      const owner = new Api(base)
      await owner.login('owner@globex.example', 'globex-owner-pw-1')
      await owner.gql(`mutation { createHost(input: {name: "globex-web-01", os: "linux"}) { id } }`)
      await signIn(page, base, server.admin, '/admin')
      await page.locator('.el-tabs__item', { hasText: 'Usage' }).click()
      const row = page.locator('[data-test=usage-table] tr', { hasText: 'globex' })
      await row.waitFor()
      const cells = await row.locator('td').allTextContents()
      assert(cells[1].trim() === '1', `Globex hosts: ${cells}`)
      await page.locator('[data-test=suspend-globex]').click()
      await page.locator('.el-message-box input').fill('unpaid invoice 2026-11')
      await page.locator('.el-message-box__btns button', { hasText: 'Suspend' }).click()
      await row.locator('[data-test=suspended-tag]').waitFor()
      await row.locator('text=unpaid invoice 2026-11').waitFor()
      await shot('suspended')
      // The suspended tenant's users are refused with the reason, its data kept.
      const refused = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: 'owner@globex.example', password: 'globex-owner-pw-1' }) })
      const body = await refused.text()
      assert(refused.status === 403 && body.includes('is suspended') && body.includes('unpaid invoice'), `suspended sign-in: ${refused.status} ${body}`)
      const call = await owner.gql('{ hosts { totalCount } }', {}, { allowErrors: true })
      assert(call.errors?.[0]?.message.includes('is suspended'), `suspended API call: ${JSON.stringify(call)}`)
      await page.locator('[data-test=resume-globex]').click()
      await row.locator('[data-test=suspend-globex]').waitFor()
      await owner.login('owner@globex.example', 'globex-owner-pw-1')
      const hosts = await owner.gql('{ hosts { totalCount } }')
      assert(hosts.data.hosts.totalCount === 1, `after resuming: ${JSON.stringify(hosts)}`)
    },
  },
  {
    name: '12-audit-search-by-trace-and-changes',
    async run({ page, base, server, shot }) {
      await signIn(page, base, server.admin, '/audit')
      await page.locator('input[data-test=filter-action]').fill('suspendTenant')
      await page.locator('[data-test=audit-search]').click()
      const first = page.locator('[data-test=audit-table] tbody tr.el-table__row').first()
      await first.locator('td', { hasText: 'suspendTenant' }).waitFor()
      // Search by the event's trace id: the operator's action is in the
      // operator's log and the tenant's, with the same trace id.
      const trace = (await first.locator('td').nth(6).textContent()).trim()
      assert(/^[0-9a-f]{16,}$/.test(trace), `trace id cell: ${trace}`)
      await page.locator('input[data-test=filter-action]').fill('')
      await page.locator('input[data-test=filter-trace]').fill(trace)
      await page.locator('[data-test=audit-search]').click()
      await page.waitForFunction((t) => {
        const rows = [...document.querySelectorAll('[data-test=audit-table] tbody tr.el-table__row')]
        return rows.length === 2 && rows.every((r) => r.textContent.includes(t) && r.textContent.includes('suspendTenant'))
      }, trace)
      // The before/after summary and the source address.
      await page.locator('[data-test=audit-table] tbody tr.el-table__row').first().locator('.el-table__expand-icon').click()
      const expand = page.locator('[data-test=audit-expand]').first()
      await expand.locator('td', { hasText: 'suspend_reason' }).waitFor()
      await expand.locator('text=unpaid invoice 2026-11').waitFor()
      await page.locator('[data-test=audit-table] td', { hasText: '127.0.0.1' }).first().waitFor()
      await shot('trace')
      // No result: an unknown trace id.
      await page.locator('input[data-test=filter-trace]').fill('no-such-trace-id')
      await page.locator('[data-test=audit-search]').click()
      await page.locator('[data-test=audit-table] .el-table__empty-text').waitFor()
    },
  },
  {
    name: '13-operator-console-failed-task-retry',
    async run({ page, shot, bin }) {
      // A server of its own that plans everything on its workers: a plan of
      // an empty estate then fails there for good, a failed task to retry.
      const own = await startFerry(bin, { FERRY_INLINE_HOSTS: '-1' })
      try {
        const api = new Api(own.url)
        await api.login(own.admin.email, own.admin.password)
        await api.gql(`mutation { generatePlan(input: {name: "empty", target: "alibaba", constraints: {start: "2026-12-07", bandwidth: "1Gbps"}}) { id status } }`)
        const failedOnce = await pollUntil(async () => (await api.gql('{ failedTasks(queue: "default") { id lastFailedAt } }')).data.failedTasks[0], { what: 'the failed plan task' })
        await signIn(page, own.url, own.admin, '/admin')
        await page.locator('.el-tabs__item', { hasText: 'Queues' }).click()
        await page.locator('[data-test=queues-table] td', { hasText: 'default' }).first().waitFor()
        const failedRow = page.locator('[data-test=failed-table] tbody tr', { hasText: 'plan:generate' })
        await failedRow.waitFor()
        await failedRow.locator('text=has no hosts yet').waitFor()
        await shot('failed')
        await failedRow.locator('[data-test=retry-task]').click()
        await page.locator('.el-message--success', { hasText: 'plan:generate queued again' }).waitFor()
        // A worker runs it again: it leaves the failed list and the queue empties.
        await pollUntil(async () => {
          const r = await api.gql('{ failedTasks(queue: "default") { id } platformQueues { name pending active } }')
          const d = r.data.platformQueues.find((q) => q.name === 'default')
          return !r.data.failedTasks.some((t) => t.id === failedOnce.id) && d.pending === 0 && d.active === 0
        }, { what: 'the retried task to run' })
      } finally {
        await own.stop()
      }
    },
  },
  {
    name: '99-sign-out',
    async run({ page, base, server }) {
      await signIn(page, base, server.admin, '/dashboard')
      await page.locator('[data-test=user-menu]').click()
      await page.locator('[data-test=signout]').click()
      await page.waitForURL(/\/signin/)
      await page.goto(`${base}/inventory`)
      await page.waitForURL(/\/signin\?next=/)
    },
  },
]
