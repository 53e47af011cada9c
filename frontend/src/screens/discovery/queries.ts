import { graphql } from '@/gql'

export const DiscoveryQuery = graphql(`
  query Discovery {
    registrationTokens(first: 100, orderBy: { field: CREATED_AT, direction: DESC }) {
      edges { node { id name tokenID expiresAt maxUses uses revokedAt createdAt } }
    }
    agents(first: 200, orderBy: { field: LAST_HEARTBEAT_AT, direction: DESC }) {
      totalCount
      edges { node { id name hostname version lastHeartbeatAt revokedAt host { id name } } }
    }
    importRuns(first: 50, orderBy: { field: CREATED_AT, direction: DESC }) {
      edges {
        node {
          id kind filename status rowsTotal rowsImported hostsCreated hostsUpdated
          connectionsImported errors actor createdAt
        }
      }
    }
  }
`)

export const CreateRegistrationTokenMutation = graphql(`
  mutation DiscoveryCreateRegistrationToken($input: CreateRegistrationTokenInput!) {
    createRegistrationToken(input: $input) {
      token
      installCommand
      registrationToken { id name expiresAt maxUses uses }
    }
  }
`)

export const RevokeRegistrationTokenMutation = graphql(`
  mutation DiscoveryRevokeRegistrationToken($id: ID!) {
    revokeRegistrationToken(id: $id) { id revokedAt }
  }
`)

export const RevokeAgentMutation = graphql(`
  mutation DiscoveryRevokeAgent($id: ID!) {
    revokeAgent(id: $id) { id revokedAt }
  }
`)
