package alibaba_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports: the provider imports engine/cloud and never a sibling
// provider, the database, the queue or the API; the emulator knows nothing
// of the provider it serves (it speaks ECS, not Ferry).
func TestImports(t *testing.T) {
	for pkg, banned := range map[string][]string{
		"github.com/ferry-migrate/ferry/engine/cloud/alibaba": {"github.com/ferry-migrate/ferry/engine/cloud/local",
			"entgo.io/", "github.com/hibiken/asynq", "github.com/ferry-migrate/ferry/graph", "github.com/ferry-migrate/ferry/jobs",
			"github.com/ferry-migrate/ferry/ent", "github.com/ferry-migrate/ferry/internal"},
		"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu": {"github.com/ferry-migrate/ferry/engine/cloud/alibaba\n",
			"github.com/ferry-migrate/ferry/engine/cloud\n", "github.com/aliyun/", "entgo.io/", "github.com/ferry-migrate/ferry/internal"},
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		deps := string(out)
		for _, b := range banned {
			for _, dep := range strings.Split(deps, "\n") {
				if strings.HasPrefix(dep+"\n", b) || (!strings.HasSuffix(b, "\n") && strings.HasPrefix(dep, b)) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
