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
		// What report.EscapeCell (folded into this) escaped, and the numbers it
		// quoted that stay numbers here.
		"-1+cmd": "'-1+cmd",
		"@user":  "'@user",
		"+":      "'+",
		"-":      "'-",
		"-.5":    "-.5",
		"-12.":   "-12.",
		"+2E-3":  "+2E-3",
		// A number parser takes these; a spreadsheet may not read them as
		// numbers, so they are escaped as text.
		"-Inf":   "'-Inf",
		"+NaN":   "'+NaN",
		"-0x1p3": "'-0x1p3",
		"+1_000": "'+1_000",
		"-5 ":    "'-5 ",
		"-5\n=1": "'-5\n=1",
	} {
		if got := ferry.CSVSafe(in); got != want {
			t.Errorf("CSVSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
