import type { HostWhereInput, HostOrderField, OrderDirection } from '@/gql/graphql'

export interface InventoryFilters {
  search: string
  environments: string[]
  criticalities: string[]
}

// hostWhere builds the server-side filter; empty parts are left out so the
// server can use its indexes.
export function hostWhere(f: InventoryFilters): HostWhereInput | undefined {
  const and: HostWhereInput[] = []
  const s = f.search.trim()
  if (s) and.push({ or: [{ nameContainsFold: s }, { fqdnContainsFold: s }, { osContainsFold: s }] })
  if (f.environments.length) and.push({ environmentIn: f.environments as HostWhereInput['environmentIn'] })
  if (f.criticalities.length) and.push({ criticalityIn: f.criticalities as HostWhereInput['criticalityIn'] })
  if (and.length === 0) return undefined
  return and.length === 1 ? and[0] : { and }
}

// Table column props map to the server's order fields; other columns cannot sort.
export const sortFields: Record<string, HostOrderField> = {
  name: 'NAME',
  os: 'OS',
  cpus: 'CPUS',
  memoryMib: 'MEMORY_MIB',
  diskProvisionedBytes: 'DISK_PROVISIONED_BYTES',
  diskUsedBytes: 'DISK_USED_BYTES',
  source: 'SOURCE',
  criticality: 'CRITICALITY',
  environment: 'ENVIRONMENT',
  lastSeenAt: 'LAST_SEEN_AT',
  createdAt: 'CREATED_AT',
}

export function hostOrder(prop: string | null, order: 'ascending' | 'descending' | null) {
  const field = prop ? sortFields[prop] : undefined
  if (!field || !order) return [{ field: 'NAME' as HostOrderField, direction: 'ASC' as OrderDirection }]
  return [{ field, direction: (order === 'ascending' ? 'ASC' : 'DESC') as OrderDirection }]
}
