import { graphql } from '@/gql'

// One page of the graph, aggregated on the server (Query.topology): at the
// application level, or one node's hosts (focus) with the nodes they talk to.
export const TopologyQuery = graphql(`
  query Topology($planId: ID, $focus: String, $first: Int, $offset: Int, $maxEdges: Int) {
    topology(planId: $planId, focus: $focus, first: $first, offset: $offset, maxEdges: $maxEdges) {
      plan { id name }
      waves hosts totalNodes totalEdges omittedEdges cycleCount spanCycles noiseConnections offset hasNextPage
      focus { key kind label hosts }
      nodes { key kind label refId hosts environment wave waves members cycles suggested }
      edges { source target connections weight bytes crossWeight ports inCycle }
      cycles { chain size betweenGroups nodes spans }
    }
  }
`)

// The plans whose waves can colour the graph.
export const TopologyPlansQuery = graphql(`
  query TopologyPlans {
    plans(first: 50, where: { statusIn: [ready, infeasible] }, orderBy: { field: CREATED_AT, direction: DESC }) {
      edges { node { id name } }
    }
  }
`)
