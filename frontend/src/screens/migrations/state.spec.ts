import { describe, expect, it } from 'vitest'
import { blockingMigration, wizardProblem } from './state'

describe('wizardProblem', () => {
  const agent = { id: 'a1' }
  const disks = [{ sizeBytes: 1 << 30 }]
  it('accepts a host with an agent and sized disks', () => {
    expect(wizardProblem({ agent, disks, migrations: [] })).toBe('')
  })
  it('needs an agent to sync', () => {
    expect(wizardProblem({ agent: null, disks })).toBe('noAgent')
  })
  it('needs disks with a size', () => {
    expect(wizardProblem({ agent, disks: [{ sizeBytes: 0 }] })).toBe('noDisks')
    expect(wizardProblem({ agent, disks: null })).toBe('noDisks')
  })
  it('refuses a host with a migration under way, not one rolled back or failed', () => {
    expect(wizardProblem({ agent, disks, migrations: [{ id: '1', state: 'syncing' }] })).toBe('busy')
    expect(wizardProblem({ agent, disks, migrations: [{ id: '1', state: 'cut_over' }] })).toBe('busy')
    expect(wizardProblem({ agent, disks, migrations: [{ id: '1', state: 'rolled_back' }, { id: '2', state: 'failed' }] })).toBe('')
    expect(blockingMigration([{ id: '1', state: 'failed' }, { id: '2', state: 'pending' }])?.id).toBe('2')
  })
})
