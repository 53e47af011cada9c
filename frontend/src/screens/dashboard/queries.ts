import { graphql } from '@/gql'

// DashboardQuery counts with first: 0 (totalCount only) so it stays cheap at
// 20,000 hosts; sums use the first page of migrations and assessments.
export const DashboardQuery = graphql(`
  query Dashboard {
    hosts(first: 0) { totalCount }
    ready: assessments(first: 0, where: { readiness: ready }) { totalCount }
    readyWithActions: assessments(first: 0, where: { readiness: ready_with_actions }) { totalCount }
    notReady: assessments(first: 0, where: { readiness: not_ready }) { totalCount }
    unknownReadiness: assessments(first: 0, where: { readiness: unknown }) { totalCount }
    costs: assessments(first: 1000) {
      totalCount
      edges { node { id monthlyCostAsIs monthlyCostRightSized } }
    }
    migrations(first: 1000) {
      totalCount
      edges { node { id state bytesDone bytesTotal } }
    }
    plans(first: 5, orderBy: { field: CREATED_AT, direction: DESC }) {
      totalCount
      edges { node { id name status problems waves { id ordinal name status startsAt endsAt } } }
    }
    infeasiblePlans: plans(first: 0, where: { status: infeasible }) { totalCount }
  }
`)
