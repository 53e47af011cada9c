// seed.mjs creates deterministic estates through the public GraphQL API.
const envs = ['production', 'staging', 'test', 'development']
const crits = ['low', 'medium', 'high', 'critical']
const oses = ['Ubuntu 22.04', 'CentOS 7.9', 'Windows Server 2019', 'Debian 12']

export function hostInput(i) {
  return {
    name: `host-${String(i).padStart(5, '0')}`,
    fqdn: `host-${i}.corp.example`,
    os: oses[i % oses.length],
    arch: 'x86_64',
    cpus: 1 + (i % 16),
    memoryMib: 1024 * (1 + (i % 32)),
    diskProvisionedBytes: (i + 1) * 10 * 1024 ** 3,
    environment: envs[i % envs.length],
    criticality: crits[i % crits.length],
    owner: `team-${i % 7}`,
  }
}

// seedHosts creates n hosts in batches of aliased createHost mutations, at
// most 10 per request (the server's mutation limit, docs/security.md).
export async function seedHosts(api, n, { from = 0, batch = 10 } = {}) {
  for (let start = from; start < from + n; start += batch) {
    const count = Math.min(batch, from + n - start)
    const vars = []
    const fields = []
    for (let k = 0; k < count; k++) {
      vars.push(`$h${k}: CreateHostInput!`)
      fields.push(`h${k}: createHost(input: $h${k}) { id }`)
    }
    const variables = Object.fromEntries(Array.from({ length: count }, (_, k) => [`h${k}`, hostInput(start + k)]))
    await api.gql(`mutation Seed(${vars.join(', ')}) { ${fields.join(' ')} }`, variables)
  }
}
