package graph

import "github.com/ferry-migrate/ferry/graph/generated"

// weighOperations gives the operator console's lists the cost of the rows
// they may return, as weighConnections does for Relay connections: the
// complexity limit then bounds them like every other list.
func weighOperations(c *generated.ComplexityRoot) {
	rows := func(first *int, def int) int {
		if first != nil && *first > 0 {
			return *first
		}
		return def
	}
	c.Query.TenantUsage = func(child int, first *int) int { return 1 + child*rows(first, 100) }
	c.Query.FailedTasks = func(child int, _ string, first *int) int { return 1 + child*rows(first, 50) }
	c.Query.PlatformQueues = func(child int) int { return 1 + child*len(jobsQueues()) }
}
