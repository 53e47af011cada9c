package ferry_test

import (
	"testing"

	"github.com/ferry-migrate/ferry"
)

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=cmd|' /C calc'!A0":       "'=cmd|' /C calc'!A0",
		"+SUM(A1:A2)":              "'+SUM(A1:A2)",
		"-2+3+cmd|' /C calc'!A0":   "'-2+3+cmd|' /C calc'!A0",
		"@SUM(1)":                  "'@SUM(1)",
		"\t=1":                     "'\t=1",
		"\r=1":                     "'\r=1",
		"-5":                       "-5",
		"+1.5e3":                   "+1.5e3",
		"web01":                    "web01",
		"":                         "",
		"a=b":                      "a=b",
		"'=already":                "'=already",
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
	} {
		if got := ferry.CSVSafe(in); got != want {
			t.Errorf("CSVSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
