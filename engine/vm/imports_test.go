package vm_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports holds the engine's line for the launch packages: the standard
// library and small libraries only, never the database, the queue, the API
// or the jobs.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ferry-migrate/ferry/engine/vm", "github.com/ferry-migrate/ferry/engine/adapt",
		"github.com/ferry-migrate/ferry/engine/health", "github.com/ferry-migrate/ferry/engine/quiesce").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"entgo.io/", "github.com/hibiken/asynq", "github.com/ferry-migrate/ferry/graph",
			"github.com/ferry-migrate/ferry/jobs", "github.com/ferry-migrate/ferry/ent", "github.com/ferry-migrate/ferry/internal",
			"github.com/ferry-migrate/ferry/engine/cloud", "github.com/go-chi/", "github.com/99designs/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("launch packages depend on %s", dep)
			}
		}
	}
}
