package ferry

import (
	"regexp"
	"strings"
)

// CSVSafe returns a cell as it may be written to a CSV a person will open in
// a spreadsheet: a cell the spreadsheet would run as a formula — one that
// starts with =, +, -, @, a tab or a carriage return (OWASP, "CSV
// Injection") — gets a leading single quote, so it shows as the text it is.
// A plain decimal number ("-5", "+1.5e3") is not a formula and is left alone,
// so exported figures stay figures; anything else a number parser would
// also take ("-Inf", "+NaN", "-0x1p3", "+1_000") is escaped like text.
// Values are stored as they were given; every CSV export (the planner's and
// assessment's CSV, the estate generator, the reports' Jira CSV) passes its
// cells through here, and the importer takes the quote off again (see
// discovery/importer).
func CSVSafe(cell string) string {
	if cell == "" || !strings.ContainsRune("=+-@\t\r", rune(cell[0])) || plainNumber.MatchString(cell) {
		return cell
	}
	return "'" + cell
}

// plainNumber is a signed decimal number with an optional fraction and
// exponent: the only cells starting with + or - that no spreadsheet runs.
var plainNumber = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// CSVSafeRecord is CSVSafe for every cell of a record (a copy).
func CSVSafeRecord(rec []string) []string {
	out := make([]string, len(rec))
	for i, c := range rec {
		out[i] = CSVSafe(c)
	}
	return out
}
