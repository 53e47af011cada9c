import { describe, expect, it } from 'vitest'
import { buildElements, parsePorts, stronglyConnected, type TopoConn, type TopoHost } from './graph'

const host = (id: string, app?: string, env = 'production'): TopoHost => ({
  id, name: `h${id}`, environment: env, application: app ? { id: app, name: `app-${app}` } : null,
})
let n = 0
const conn = (s: string, d: string | null, port = 443, bytes = 10): TopoConn => ({ id: String(n++), srcHostID: s, dstHostID: d, port, protocol: 'tcp', bytes, count: 1 })
const none = { groupBy: 'none' as const, ports: [], applicationIds: [], environments: [] }

describe('stronglyConnected', () => {
  it('finds cycles and ignores acyclic parts', () => {
    const sccs = stronglyConnected(['a', 'b', 'c', 'd', 'e'], [['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd'], ['d', 'e']])
    expect(sccs.map((c) => c.sort())).toEqual([['a', 'b', 'c']])
  })

  it('handles a long chain without recursion', () => {
    const ids = Array.from({ length: 20000 }, (_, i) => String(i))
    const edges = ids.slice(1).map((id, i) => [ids[i], id] as [string, string])
    edges.push(['19999', '0'])
    expect(stronglyConnected(ids, edges)[0]).toHaveLength(20000)
  })
})

describe('buildElements', () => {
  const hosts = [host('1', 'x'), host('2', 'x'), host('3', 'y', 'test'), host('4')]
  const conns = [conn('1', '2', 5432, 5), conn('1', '2', 6379, 7), conn('2', '1'), conn('2', '3'), conn('3', null), conn('4', '4')]

  it('merges parallel connections and marks cycles', () => {
    const el = buildElements(hosts, conns, none)
    expect(el.edges).toHaveLength(3)
    const e12 = el.edges.find((e) => e.id === '1>2')!
    expect(e12.label).toBe('5432,6379')
    expect(e12.weight).toBe(12)
    expect(e12.inCycle).toBe(true)
    expect(el.edges.find((e) => e.id === '2>3')!.inCycle).toBe(false)
    expect(el.nodes.filter((x) => x.inCycle).map((x) => x.id).sort()).toEqual(['1', '2'])
  })

  it('groups by application and filters by port and environment', () => {
    const el = buildElements(hosts, conns, { ...none, groupBy: 'application', ports: [443], environments: ['production'] })
    expect(el.groups.map((g) => g.label)).toEqual(['app-x'])
    expect(el.nodes.map((x) => x.id)).toEqual(['1', '2', '4'])
    expect(el.nodes.find((x) => x.id === '1')!.parent).toBe('app:x')
    expect(el.edges.map((e) => e.id)).toEqual(['2>1'])
    expect(el.cycles).toEqual([])
  })

  it('filters by application', () => {
    const el = buildElements(hosts, conns, { ...none, applicationIds: ['y'] })
    expect(el.nodes.map((x) => x.id)).toEqual(['3'])
    expect(el.edges).toEqual([])
  })
})

describe('parsePorts', () => {
  it('accepts commas and spaces and drops junk', () => {
    expect(parsePorts('22, 443  5432,x,70000,0')).toEqual([22, 443, 5432])
  })
})
