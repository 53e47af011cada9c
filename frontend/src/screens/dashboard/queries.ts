import { graphql } from '@/gql'

// DashboardQuery counts with first: 0 (totalCount only) so it stays cheap at
// 20,000 hosts. Costs are the server's sums over every assessment
// (assessmentSummary), never a page added up here; migrations' bytes use
// their first page.
export const DashboardQuery = graphql(`
  query Dashboard {
    hosts(first: 0) { totalCount }
    ready: assessments(first: 0, where: { readiness: ready }) { totalCount }
    readyWithActions: assessments(first: 0, where: { readiness: ready_with_actions }) { totalCount }
    notReady: assessments(first: 0, where: { readiness: not_ready }) { totalCount }
    unknownReadiness: assessments(first: 0, where: { readiness: unknown }) { totalCount }
    costs: assessmentSummary(target: "alibaba") {
      hosts monthlyCostAsIs monthlyCostRightSized storageMonthly currency region assessedAt priced priceDate
    }
    migrations(first: 1000) {
      totalCount
      edges { node { id state bytesDone bytesTotal } }
    }
    plans(first: 5, orderBy: { field: CREATED_AT, direction: DESC }) {
      totalCount
      edges { node { id name status problems waves { id ordinal name pilot status startsAt endsAt } } }
    }
    infeasiblePlans: plans(first: 0, where: { status: infeasible }) { totalCount }
  }
`)
