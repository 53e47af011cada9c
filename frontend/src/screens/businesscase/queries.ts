import { graphql } from '@/gql'

export const BusinessCaseQuery = graphql(`
  query BusinessCase($target: String, $assumptions: BusinessCaseAssumptionsInput) {
    businessCase(target: $target, assumptions: $assumptions) {
      target currency hosts assessedHosts measuredHosts idleHosts zombieHosts priced priceDate
      onPremises { compute storage licences facilities labour total }
      cloudAsIs { compute storage licences facilities labour total }
      cloudRightSized { compute storage licences facilities labour total }
      plan { id name }
      cashFlow { year stayOnPremises onPremises cloud migration savings cumulativeSavings }
      assumptions {
        computePerVcpuMonth storagePerGibMonth windowsLicencePerVcpuMonth virtualisationPerVcpuMonth facilitiesPerServerMonth
        adminCostPerYear serversPerAdmin cloudLabourShare migrationPerServer years idleCpuPercent zombieCpuPercent
      }
    }
  }
`)
