import { graphql } from '@/gql'

export const MigrationsQuery = graphql(`
  query Migrations($first: Int, $after: Cursor, $where: MigrationWhereInput) {
    migrations(first: $first, after: $after, where: $where, orderBy: { field: STATE, direction: ASC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id state failureReason lastError bytesTotal bytesDone rateBps lagSeconds etaSeconds lastSyncAt updatedAt
          percent rate rateLimit eta allowedActions
          host { id name }
          cloudAccount { id name provider }
          disks { name sizeBytes targetDiskID bytesDone syncedAt }
          latestRecoveryPoint { id kind createdAt }
          recoveryPoints(first: 20, orderBy: { field: CREATED_AT, direction: DESC }) { totalCount edges { node { id kind externalID sizeBytes createdAt labels } } }
          launches { id kind status instanceID instanceType sizing message checks finishedAt createdAt console accel quiescedAt healthyAt downtimeSeconds }
        }
      }
    }
  }
`)

// Hosts to choose from in the start wizard, with what the migration needs:
// disks (from the agent's inventory) and the agent that will sync them.
export const WizardHostsQuery = graphql(`
  query MigrationWizardHosts($first: Int, $where: HostWhereInput) {
    hosts(first: $first, where: $where, orderBy: [{ field: NAME, direction: ASC }]) {
      totalCount
      edges { node { id name os diskProvisionedBytes disks { name sizeBytes } agent { id lastHeartbeatAt } migrations { id state } } }
    }
  }
`)

export const CloudAccountsForWizardQuery = graphql(`
  query MigrationWizardCloudAccounts {
    cloudAccounts(first: 100) { edges { node { id name provider } } }
  }
`)

export const StartMigrationMutation = graphql(`
  mutation StartMigration($hostIds: [ID!]!, $cloudAccountId: ID, $rateLimit: String, $quiesce: QuiesceInput) {
    startMigration(hostIds: $hostIds, cloudAccountId: $cloudAccountId, rateLimit: $rateLimit, quiesce: $quiesce) { id state host { id name } }
  }
`)

export const TestLaunchMutation = graphql(`
  mutation TestLaunch($migrationId: ID!, $recoveryPointId: ID) {
    testLaunch(migrationId: $migrationId, recoveryPointId: $recoveryPointId) { id status kind }
  }
`)

export const CutoverMutation = graphql(`
  mutation Cutover($migrationId: ID!) {
    cutover(migrationId: $migrationId) { id state }
  }
`)

export const RollbackMutation = graphql(`
  mutation Rollback($migrationId: ID!) {
    rollback(migrationId: $migrationId) { id state }
  }
`)

// Live progress of the listed migrations over the websocket: the server sends
// each one at once, then whenever its row changes (bytes, rate, ETA, lag, state).
export const MigrationProgressSubscription = graphql(`
  subscription MigrationProgress($ids: [ID!]) {
    migrationProgress(ids: $ids) {
      id state failureReason lastError bytesTotal bytesDone rateBps lagSeconds etaSeconds lastSyncAt updatedAt
      percent rate rateLimit eta allowedActions
      disks { name sizeBytes targetDiskID bytesDone syncedAt }
      latestRecoveryPoint { id kind createdAt }
    }
  }
`)
