import { graphql } from '@/gql'

export const UsersQuery = graphql(`
  query AdminUsers($after: Cursor) {
    users(first: 100, after: $after, orderBy: { field: EMAIL, direction: ASC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id email name role disabled lastLoginAt tenant { id name } } }
    }
  }
`)

export const CreateUserMutation = graphql(`
  mutation AdminCreateUser($input: CreateUserInput!, $password: String!) {
    createUser(input: $input, password: $password) { id email name role disabled }
  }
`)

export const UpdateUserMutation = graphql(`
  mutation AdminUpdateUser($id: ID!, $input: UpdateUserInput!) {
    updateUser(id: $id, input: $input) { id role disabled }
  }
`)

export const TenantsQuery = graphql(`
  query AdminTenants {
    tenants(first: 200, orderBy: { field: NAME, direction: ASC }) {
      totalCount
      edges { node { id name slug disabled createdAt } }
    }
  }
`)

export const CreateTenantMutation = graphql(`
  mutation AdminCreateTenant($input: CreateTenantInput!, $ownerEmail: String!) {
    createTenant(input: $input, ownerEmail: $ownerEmail) {
      tenant { id name slug }
      owner { id email }
      oneTimePassword
    }
  }
`)

export const UpdateTenantMutation = graphql(`
  mutation AdminUpdateTenant($id: ID!, $input: UpdateTenantInput!) {
    updateTenant(id: $id, input: $input) { id disabled }
  }
`)

export const TokensQuery = graphql(`
  query AdminAPITokens {
    apiTokens(first: 200, orderBy: { field: CREATED_AT, direction: DESC }) {
      edges { node { id name prefix createdAt expiresAt lastUsedAt revokedAt user { email } } }
    }
  }
`)

export const CreateTokenMutation = graphql(`
  mutation AdminCreateAPIToken($name: String!) {
    createAPIToken(name: $name) { token { id name prefix } secret }
  }
`)

export const RevokeTokenMutation = graphql(`
  mutation AdminRevokeAPIToken($id: ID!) {
    revokeAPIToken(id: $id) { id revokedAt }
  }
`)

export const TenantUsageQuery = graphql(`
  query OpsTenantUsage {
    tenantUsage(first: 200) {
      tenant { id name slug disabled suspendedAt suspendReason deletionScheduledAt }
      hosts agents migrationsInFlight bytesMoved
    }
  }
`)

export const SuspendTenantMutation = graphql(`
  mutation OpsSuspendTenant($id: ID!, $reason: String!) {
    suspendTenant(id: $id, reason: $reason) { id suspendedAt suspendReason }
  }
`)

export const ResumeTenantMutation = graphql(`
  mutation OpsResumeTenant($id: ID!) {
    resumeTenant(id: $id) { id suspendedAt suspendReason }
  }
`)

export const QueuesQuery = graphql(`
  query OpsQueues {
    platformQueues { name pending active scheduled retry archived processedToday failedToday latencySeconds paused }
  }
`)

export const FailedTasksQuery = graphql(`
  query OpsFailedTasks($queue: String!) {
    failedTasks(queue: $queue, first: 100) { id queue type state lastError retried maxRetry lastFailedAt }
  }
`)

export const RetryTaskMutation = graphql(`
  mutation OpsRetryTask($queue: String!, $id: String!) {
    retryTask(queue: $queue, id: $id) { id state }
  }
`)
