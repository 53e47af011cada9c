import { graphql } from '@/gql'

export const AuditEventsQuery = graphql(`
  query AuditEvents($first: Int, $after: Cursor, $where: AuditEventWhereInput) {
    auditEvents(first: $first, after: $after, where: $where, orderBy: { field: CREATED_AT, direction: DESC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id createdAt actor action objectType objectID traceID sourceIP details changes seq hash tenant { name } } }
    }
  }
`)
