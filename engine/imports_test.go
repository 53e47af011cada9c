package engine

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports holds the line from DESIGN.md §1: the engine imports the
// standard library and small focused libraries, never the database, the
// queue, the API or an HTTP framework.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ferry-migrate/ferry/engine").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"entgo.io/", "github.com/hibiken/asynq", "github.com/ferry-migrate/ferry/graph",
			"github.com/ferry-migrate/ferry/jobs", "github.com/ferry-migrate/ferry/ent", "github.com/go-chi/", "github.com/99designs/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("engine depends on %s", dep)
			}
		}
	}
}
