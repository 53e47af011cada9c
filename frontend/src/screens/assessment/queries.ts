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
