import { graphql } from '@/gql'

export const HostsQuery = graphql(`
  query InventoryHosts($first: Int, $after: Cursor, $orderBy: [HostOrder!], $where: HostWhereInput) {
    hosts(first: $first, after: $after, orderBy: $orderBy, where: $where) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id name fqdn os arch cpus memoryMib diskProvisionedBytes diskUsedBytes
          environment criticality source owner ips lastSeenAt createdAt
        }
      }
    }
  }
`)

export const CreateApplicationMutation = graphql(`
  mutation InventoryCreateApplication($input: CreateApplicationInput!) {
    createApplication(input: $input) { id name }
  }
`)
