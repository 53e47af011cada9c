import { graphql } from '@/gql'

export const SuggestionsQuery = graphql(`
  query ApplicationSuggestions {
    applicationSuggestions(first: 200, where: { status: open }, orderBy: { field: HOST_COUNT, direction: DESC }) {
      totalCount
      edges {
        node { id name environment extends hostCount members internalWeight externalWeight sharedWeight cohesion ports neighbours }
      }
    }
  }
`)

export const SuggestMutation = graphql(`
  mutation SuggestApplications {
    suggestApplications { suggestions sharedServices labelConflicts }
  }
`)

export const AcceptMutation = graphql(`
  mutation AcceptApplicationSuggestion($id: ID!, $name: String) {
    acceptApplicationSuggestion(id: $id, name: $name) { id name }
  }
`)

export const RenameMutation = graphql(`
  mutation RenameApplicationSuggestion($id: ID!, $name: String!) {
    renameApplicationSuggestion(id: $id, name: $name) { id name }
  }
`)

export const SplitMutation = graphql(`
  mutation SplitApplicationSuggestion($id: ID!, $hostIds: [ID!]!, $name: String) {
    splitApplicationSuggestion(id: $id, hostIds: $hostIds, name: $name) { id name hostCount }
  }
`)
