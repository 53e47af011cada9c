import { graphql } from '@/gql'

export const AssessmentsQuery = graphql(`
  query Assessments($first: Int, $after: Cursor, $where: AssessmentWhereInput, $orderBy: AssessmentOrder) {
    assessments(first: $first, after: $after, where: $where, orderBy: $orderBy) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id target region readiness reasons actions instanceType monthlyCostAsIs
          monthlyCostRightSized transferSeconds offlineSeeding
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
    }
  }
`)

export const RunAssessmentMutation = graphql(`
  mutation RunAssessment($target: String!, $region: String, $bandwidth: String) {
    runAssessment(target: $target, region: $region, bandwidth: $bandwidth) { target region queued hosts }
  }
`)
