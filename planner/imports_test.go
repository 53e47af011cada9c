package planner_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStayPure holds DESIGN.md's line: the planner imports no
// database, transport or queue package, and no other Ferry domain package.
func TestImportsStayPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"entgo.io/", "net/http", "github.com/hibiken/asynq", "github.com/ferry-migrate/ferry/discovery", "github.com/ferry-migrate/ferry/engine", "github.com/ferry-migrate/ferry/graph", "github.com/ferry-migrate/ferry/jobs", "github.com/ferry-migrate/ferry/ent"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("planner depends on %s", dep)
			}
		}
	}
}
