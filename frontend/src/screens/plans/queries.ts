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
        id name target status problems constraints metrics
        waves {
          id ordinal name status startsAt endsAt cutoverAt dataBytes replicationSeconds
          members { id reason moveGroup manual host { id name } }
        }
      }
    }
  }
`)
