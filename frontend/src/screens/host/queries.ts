import { graphql } from '@/gql'

export const HostDetailQuery = graphql(`
  query HostDetail($id: ID!) {
    node(id: $id) {
      __typename
      ... on Host {
        id name fqdn os osFamily kernel arch bootMode cpus cpuModel memoryMib
        diskProvisionedBytes diskUsedBytes virtualization powerState source biosUUID
        environment criticality owner tags ips macs cpuP95 memoryP95 lastSeenAt
        application { id name }
        disks { id name device filesystem sizeBytes usedBytes }
        nics { id name mac addresses network }
        software { id name kind version process }
        outgoing(first: 100, orderBy: { field: BYTES, direction: DESC }) {
          totalCount
          edges { node { id port protocol process count bytes lastSeen dstAddress dst { id name } } }
        }
        incoming(first: 100, orderBy: { field: BYTES, direction: DESC }) {
          totalCount
          edges { node { id port protocol process count bytes lastSeen src { id name } } }
        }
        assessments {
          id target region readiness reasons actions instanceType monthlyCostAsIs
          monthlyCostRightSized transferSeconds offlineSeeding
        }
        migrations { id state bytesDone bytesTotal rateBps etaSeconds lagSeconds failureReason }
        waveMemberships { id reason reasons { kind code params } moveGroup wave { id name ordinal plan { id name } } }
      }
    }
  }
`)

export const UpdateHostMutation = graphql(`
  mutation UpdateHost($id: ID!, $input: UpdateHostInput!) {
    updateHost(id: $id, input: $input) { id environment criticality owner tags application { id name } }
  }
`)

export const DeleteHostMutation = graphql(`
  mutation DeleteHost($id: ID!) {
    deleteHost(id: $id)
  }
`)

export const HostApplicationsQuery = graphql(`
  query HostApplications {
    applications(first: 500, orderBy: { field: NAME, direction: ASC }) { edges { node { id name } } }
  }
`)
