package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/i18n"
	"github.com/ferry-migrate/ferry/planner"
)

// TestPlanReasonsAreCodes: every member of a stored plan carries its
// reason as codes with parameters (issue 14), each code has a template in
// both languages, the codes rendered in English are the stored English
// reason, and rendered in Chinese they hold none of the English wording.
func TestPlanReasonsAreCodes(t *testing.T) {
	ts := mustStart(t)
	seedEstate(t, ts, 400, 11)
	c := ts.login(t, "admin@example.com", adminPassword)
	d := c.mustGQL(generatePlanMutation, map[string]any{"in": planInput("reasons", map[string]any{"pilotHosts": 5})})
	id := dig(d, "generatePlan", "id").(string)
	d = c.mustGQL(`query($id: ID!) { node(id: $id) { ... on Plan { waves { id } } } }`, map[string]any{"id": id})
	members, kinds, codes := 0, map[string]bool{}, map[string]bool{}
	english := []string{"moves with", "depends on", "could move from", "shared service", "was full", "pinned to", "pilot:", "latency warning", "no dependencies", "the first with room"}
	for _, w := range dig(d, "node", "waves").([]any) {
		wd := c.mustGQL(`query($id: ID!) { node(id: $id) { ... on Wave { members { reason reasons { kind code params } } } } }`, map[string]any{"id": dig(w, "id")})
		for _, m := range dig(wd, "node", "members").([]any) {
			members++
			var rs []i18n.Finding
			b, _ := json.Marshal(dig(m, "reasons"))
			if err := json.Unmarshal(b, &rs); err != nil || len(rs) == 0 {
				t.Fatalf("member without reasons: %v (%v)", m, err)
			}
			for _, r := range rs {
				kinds[r.Kind] = true
				codes[r.Code] = true
				if !i18n.Has(r.Code) {
					t.Fatalf("reason code %q has no template in every language", r.Code)
				}
			}
			if en, want := planner.ReasonText("en", rs), dig(m, "reason").(string); en != want {
				t.Fatalf("the codes say %q in English; the stored reason is %q", en, want)
			}
			zh := planner.ReasonText("zh-CN", rs)
			for _, e := range english {
				// Names (hosts, applications) and config keys stay as they are; the wording must not.
				if strings.Contains(zh, e) {
					t.Fatalf("Chinese reason %q still says %q", zh, e)
				}
			}
		}
	}
	if members != 400 || !kinds["wave"] || !kinds["group"] || len(codes) < 5 {
		t.Fatalf("%d members, kinds %v, %d codes", members, kinds, len(codes))
	}
}
