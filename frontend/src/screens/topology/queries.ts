import { graphql } from '@/gql'

// The server caps a page at 1,000 rows, so the screen loads up to two pages
// of hosts and five of connections (the heaviest first) and says when it cut.
export const TopologyHostsQuery = graphql(`
  query TopologyHosts($after: Cursor, $where: HostWhereInput) {
    hosts(first: 1000, after: $after, where: $where, orderBy: [{ field: NAME, direction: ASC }]) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id name environment
          application { id name }
          waveMemberships { wave { id name ordinal plan { id name } } }
        }
      }
    }
  }
`)

export const TopologyConnectionsQuery = graphql(`
  query TopologyConnections($after: Cursor, $where: ConnectionWhereInput) {
    connections(first: 1000, after: $after, where: $where, orderBy: { field: BYTES, direction: DESC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id srcHostID dstHostID port protocol bytes count } }
    }
  }
`)

export const ApplicationsQuery = graphql(`
  query TopologyApplications {
    applications(first: 500, orderBy: { field: NAME, direction: ASC }) {
      edges { node { id name } }
    }
  }
`)

// The newest plan names the shared services (hosts a large part of the
// estate calls); the graph draws them apart.
export const TopologySharedQuery = graphql(`
  query TopologyShared {
    plans(first: 1, orderBy: { field: CREATED_AT, direction: DESC }) {
      edges { node { id sharedServices } }
    }
  }
`)
