package discovery

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStayPure holds the layering line: discovery and its
// sub-packages never reach for the database, the API, the queue or the
// other domain packages.
func TestImportsStayPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ferry-migrate/ferry/discovery/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"entgo.io/", "github.com/99designs/gqlgen", "github.com/hibiken/asynq", "github.com/redis/",
		"github.com/ferry-migrate/ferry/ent", "github.com/ferry-migrate/ferry/graph", "github.com/ferry-migrate/ferry/jobs",
		"github.com/ferry-migrate/ferry/planner", "github.com/ferry-migrate/ferry/engine", "github.com/ferry-migrate/ferry/internal"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("discovery depends on %s", pkg)
			}
		}
	}
}
