import { graphql } from '@/gql'

export const PlansQuery = graphql(`
  query Plans {
    plans(first: 100, orderBy: { field: CREATED_AT, direction: DESC }) {
      totalCount
      edges { node { id name target status createdAt } }
    }
  }
`)

export const PlanQuery = graphql(`
  query Plan($id: ID!) {
    node(id: $id) {
      __typename
      ... on Plan {
        id name target status problems constraints metrics error infeasible unplaced warnings sharedServices
        waves {
          id ordinal name status startsAt endsAt cutoverAt dataBytes replicationSeconds pilot hostCount confidence confidenceFactors risk riskFactors
          members { id reason moveGroup manual host { id name } }
        }
      }
    }
  }
`)

export const GeneratePlanMutation = graphql(`
  mutation GeneratePlan($input: GeneratePlanInput!) {
    generatePlan(input: $input) { id name target status error }
  }
`)

export const MovePlanHostMutation = graphql(`
  mutation MovePlanHost($planId: ID!, $hostId: ID!, $toWave: Int!, $wholeGroup: Boolean, $confirm: Boolean) {
    movePlanHost(planId: $planId, hostId: $hostId, toWave: $toWave, wholeGroup: $wholeGroup, confirm: $confirm) {
      saved
      violations { kind message hostIDs }
      plan { id status }
    }
  }
`)

// The chosen wave's reasons as codes (translated in the UI); fetched per
// wave, not with the whole plan, so the plan's query stays within the cost limit.
export const WaveReasonsQuery = graphql(`
  query WaveReasons($id: ID!) {
    node(id: $id) { ... on Wave { id members { id reasons { kind code params } } } }
  }
`)

export const WaveRunQuery = graphql(`
  query WaveRun($id: ID!) {
    node(id: $id) {
      __typename
      ... on Wave {
        id status runMessage runCutoverAt runCutoverEndsAt approverRole approvedBy approvedAt runStartedBy finishedAt
        progress { hosts bytesTotal bytesDone maxLagSeconds parallel nextCutoverAt cutoverEndsAt byState { state count } }
        hooks { name point kind url script mustSucceed }
        manualSteps { index name doneBy doneAt }
        runbook {
          host { id name }
          member { id runState runMessage cutoverAt }
          migration { id state percent }
          steps { kind phase status lastError events { at level message } }
          hookDeliveries { at point hook attempt statusCode ok error }
        }
      }
    }
  }
`)

export const StartWaveMutation = graphql(`
  mutation StartWave($waveId: ID!, $input: StartWaveInput) {
    startWave(waveId: $waveId, input: $input) { started queued noAgent wave { id status } }
  }
`)

export const PauseWaveMutation = graphql(`
  mutation PauseWave($waveId: ID!) { pauseWave(waveId: $waveId) { id status } }
`)

export const ResumeWaveMutation = graphql(`
  mutation ResumeWave($waveId: ID!) { resumeWave(waveId: $waveId) { id status } }
`)

export const ApproveWaveMutation = graphql(`
  mutation ApproveWave($waveId: ID!) { approveWave(waveId: $waveId) { id approvedBy } }
`)

export const TickWaveStepMutation = graphql(`
  mutation TickWaveStep($waveId: ID!, $index: Int!) { tickWaveStep(waveId: $waveId, index: $index) { id } }
`)

export const WaveProgressSubscription = graphql(`
  subscription WaveProgress($waveId: ID!) { waveProgress(waveId: $waveId) { id status updatedAt } }
`)
