import type { BusinessCaseAssumptionsInput } from '@/gql/graphql'

// The assumptions a user edits, remembered per browser and sent with the
// query and with the report download (so the printed case is the one seen).
export const assumptionKeys = [
  'computePerVcpuMonth', 'storagePerGibMonth', 'windowsLicencePerVcpuMonth', 'virtualisationPerVcpuMonth', 'facilitiesPerServerMonth',
  'adminCostPerYear', 'serversPerAdmin', 'cloudLabourShare', 'migrationPerServer', 'years', 'idleCpuPercent', 'zombieCpuPercent',
] as const
export type AssumptionKey = (typeof assumptionKeys)[number]
const storageKey = 'ferry.businessCase'

export function loadAssumptions(): BusinessCaseAssumptionsInput {
  try {
    const v = JSON.parse(localStorage.getItem(storageKey) ?? '{}')
    return pickAssumptions(v)
  } catch {
    return {}
  }
}

export function saveAssumptions(a: BusinessCaseAssumptionsInput): void {
  localStorage.setItem(storageKey, JSON.stringify(pickAssumptions(a)))
}

// pickAssumptions keeps the known keys holding finite numbers.
export function pickAssumptions(v: Record<string, unknown>): BusinessCaseAssumptionsInput {
  const out: Record<string, number> = {}
  for (const k of assumptionKeys) {
    const n = Number(v?.[k])
    if (v?.[k] !== undefined && v?.[k] !== null && v?.[k] !== '' && Number.isFinite(n)) out[k] = k === 'years' ? Math.round(n) : n
  }
  return out as BusinessCaseAssumptionsInput
}
