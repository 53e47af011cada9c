import { graphql } from '@/gql'

export const CloudAccountsQuery = graphql(`
  query CloudAccounts {
    cloudAccounts(first: 200, orderBy: { field: NAME, direction: ASC }) {
      totalCount
      edges { node { id name provider region accessKeyID settings checkedAt checkMessage createdAt } }
    }
  }
`)

export const CreateCloudAccountMutation = graphql(`
  mutation CreateCloudAccount($input: CreateCloudAccountInput!) {
    createCloudAccount(input: $input) { id name provider region }
  }
`)

export const DeleteCloudAccountMutation = graphql(`
  mutation DeleteCloudAccount($id: ID!) {
    deleteCloudAccount(id: $id)
  }
`)

export const CheckCloudAccountMutation = graphql(`
  mutation CheckCloudAccount($id: ID!) {
    checkCloudAccount(id: $id) {
      ok
      checks { name ok message }
      account { id checkedAt checkMessage }
    }
  }
`)
