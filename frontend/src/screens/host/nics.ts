// nicRows lists a host's network interfaces: the NIC rows an agent or
// vCenter reported, or, for a host imported from a CSV or an RVTools export
// with only its addresses and MACs, one row per MAC (or one with every
// address when there is no MAC) so the screen never says "0" for a host
// with known addresses.
export interface NicRow { id: string; name: string; mac: string; addresses: string[]; network: string; derived: boolean }

export function nicRows(h: { nics?: ReadonlyArray<{ id: string; name: string; mac: string; addresses?: ReadonlyArray<string> | null; network: string }> | null; ips?: ReadonlyArray<string> | null; macs?: ReadonlyArray<string> | null }): NicRow[] {
  const nics = h.nics ?? []
  if (nics.length) return nics.map((n) => ({ id: n.id, name: n.name, mac: n.mac, addresses: [...(n.addresses ?? [])], network: n.network, derived: false }))
  const ips = [...(h.ips ?? [])]
  const macs = [...(h.macs ?? [])]
  if (!ips.length && !macs.length) return []
  if (!macs.length) return [{ id: 'import-0', name: '', mac: '', addresses: ips, network: '', derived: true }]
  // With as many addresses as MACs they pair up in order; otherwise the
  // addresses stay with the first interface.
  return macs.map((mac, i) => ({
    id: `import-${i}`, name: '', mac, network: '', derived: true,
    addresses: ips.length === macs.length ? [ips[i]] : i === 0 ? ips : [],
  }))
}
