import { graphql } from '@/gql'

export const AssessmentsQuery = graphql(`
  query Assessments($first: Int, $after: Cursor, $where: AssessmentWhereInput, $orderBy: AssessmentOrder) {
    assessments(first: $first, after: $after, where: $where, orderBy: $orderBy) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id target region readiness reasons actions instanceType instanceTypeAsIs monthlyCostAsIs
          monthlyCostRightSized storageMonthly transferSeconds offlineSeeding
          findings { kind code params }
          host { id name cpus memoryMib diskUsedBytes }
        }
      }
    }
  }
`)

export const AssessmentSummaryQuery = graphql(`
  query AssessmentSummary($target: String!) {
    assessmentSummary(target: $target) {
      target hosts ready readyWithActions notReady unknown monthlyCostAsIs monthlyCostRightSized
      storageMonthly savingsPercent usedBytes transferSeconds offlineSeedingHosts offlineSeedingBytes
      priced currency region assessedAt priceSource priceDate priceImported
    }
    priceCatalog(target: $target) { date ageDays source imported }
  }
`)

export const RunAssessmentMutation = graphql(`
  mutation RunAssessment($target: String!, $region: String, $bandwidth: String) {
    runAssessment(target: $target, region: $region, bandwidth: $bandwidth) { target region queued hosts }
  }
`)
