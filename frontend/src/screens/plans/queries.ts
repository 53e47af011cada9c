import { graphql } from '@/gql'

export const PlansQuery = graphql(`
  query Plans {
    plans(first: 100, orderBy: { field: CREATED_AT, direction: DESC }) {
      totalCount
      edges { node { id name target status createdAt } }
    }
  }
`)

export const PlanQuery = graphql(`
  query Plan($id: ID!) {
    node(id: $id) {
      __typename
      ... on Plan {
        id name target status problems constraints metrics error infeasible unplaced warnings sharedServices
        waves {
          id ordinal name status startsAt endsAt cutoverAt dataBytes replicationSeconds pilot hostCount confidence confidenceFactors risk riskFactors
          members { id reason moveGroup manual host { id name } }
        }
      }
    }
  }
`)

export const GeneratePlanMutation = graphql(`
  mutation GeneratePlan($input: GeneratePlanInput!) {
    generatePlan(input: $input) { id name target status error }
  }
`)

export const MovePlanHostMutation = graphql(`
  mutation MovePlanHost($planId: ID!, $hostId: ID!, $toWave: Int!, $wholeGroup: Boolean, $confirm: Boolean) {
    movePlanHost(planId: $planId, hostId: $hostId, toWave: $toWave, wholeGroup: $wholeGroup, confirm: $confirm) {
      saved
      violations { kind message hostIDs }
      plan { id status }
    }
  }
`)
