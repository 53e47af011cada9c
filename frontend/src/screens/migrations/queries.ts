import { graphql } from '@/gql'

export const MigrationsQuery = graphql(`
  query Migrations($first: Int, $after: Cursor, $where: MigrationWhereInput) {
    migrations(first: $first, after: $after, where: $where, orderBy: { field: STATE, direction: ASC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id state failureReason bytesTotal bytesDone rateBps lagSeconds etaSeconds lastSyncAt
          host { id name }
          cloudAccount { id name provider }
          recoveryPoints(first: 20) { totalCount edges { node { id externalID sizeBytes createdAt labels } } }
          launches { id kind status instanceID finishedAt createdAt }
        }
      }
    }
  }
`)
