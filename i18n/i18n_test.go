package i18n_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/i18n"
)

var placeholder = regexp.MustCompile(`\{(\w+)\}`)

func params(tpl string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(tpl, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestCatalogsMatch: every code has a template in every language with the
// same placeholders, and no template uses vue-i18n's special characters
// (the UI renders these same files).
func TestCatalogsMatch(t *testing.T) {
	en := i18n.Codes("en")
	if len(en) == 0 {
		t.Fatal("empty English catalog")
	}
	for _, lang := range i18n.Languages[1:] {
		if diff := cmp.Diff(en, i18n.Codes(lang)); diff != "" {
			t.Errorf("codes of en and %s differ (-en +%s):\n%s", lang, lang, diff)
		}
		for _, c := range en {
			if diff := cmp.Diff(params(i18n.Template("en", c)), params(i18n.Template(lang, c))); diff != "" {
				t.Errorf("%s: placeholders differ between en and %s:\n%s", c, lang, diff)
			}
		}
	}
	for _, lang := range i18n.Languages {
		for _, c := range i18n.Codes(lang) {
			tpl := i18n.Template(lang, c)
			if strings.ContainsAny(placeholder.ReplaceAllString(tpl, ""), "@|{}$") {
				t.Errorf("%s (%s): %q holds a character vue-i18n treats as syntax (@ | { } $)", c, lang, tpl)
			}
		}
	}
}

// TestEveryCodeUsedHasTemplates scans the Go sources and data files that
// produce domain texts for codes and fails for any code without a
// template in every language (a new code would show raw in the UI).
func TestEveryCodeUsedHasTemplates(t *testing.T) {
	code := regexp.MustCompile(`\b(assess|plan)\.(action|reason|missing|note|wave|member|group)\.[a-z0-9_]+\b`)
	seen := map[string]bool{}
	root := ".."
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "frontend" || d.Name() == "ent" || d.Name() == "generated") {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".yaml")) || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, c := range code.FindAllString(string(b), -1) {
			if !seen[c] {
				seen[c] = true
				if !i18n.Has(c) {
					t.Errorf("%s uses %s, which has no template in every language", p, c)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 20 {
		t.Errorf("found only %d codes in use; the scan is not reading the sources", len(seen))
	}
}

func TestText(t *testing.T) {
	m := i18n.M("assess.action.eol", "os", "CentOS 7", "date", "2024-06-30")
	if got, want := m.Text("zh-CN"), "CentOS 7 已于 2024-06-30 终止支持：不再有安全更新，请规划升级"; got != want {
		t.Errorf("zh-CN: %q, want %q", got, want)
	}
	if got := m.Text("fr"); !strings.HasPrefix(got, "CentOS 7 reached end of life") {
		t.Errorf("unknown language falls back to English, got %q", got)
	}
	if got := i18n.M("no.such.code").Text("en"); got != "no.such.code" {
		t.Errorf("unknown code shows itself, got %q", got)
	}
}
