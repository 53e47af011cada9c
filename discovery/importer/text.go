package importer

import (
	"strings"
	"unicode/utf8"
)

// badText says what is wrong with a cell's text for storing, or "" when
// nothing is: it must be UTF-8 and hold no NUL byte (a file saved in
// another encoding, or binary junk, is refused row by row rather than
// stored as mojibake or cut short at the NUL by whatever reads it next).
func badText(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8 text (save the file as UTF-8)"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "holds a NUL byte"
	}
	return ""
}

// badCells returns the 1-based field of the first bad cell of rec and
// what is wrong with it.
func badCells(rec []string) (int, string) {
	for i, c := range rec {
		if bad := badText(c); bad != "" {
			return i + 1, bad
		}
	}
	return 0, ""
}

// formulaStart reports whether a spreadsheet would read s as a formula
// (OWASP's list: = + - @, tab and carriage return).
func formulaStart(s string) bool {
	return s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0]))
}

// unescapeFormulas undoes the export escaping of formula cells: Ferry's
// CSV exports prefix such a cell with a single quote so spreadsheets show
// it as text, and a file exported and imported again keeps its values.
func unescapeFormulas(rec []string) {
	for i, c := range rec {
		if len(c) > 1 && c[0] == '\'' && formulaStart(c[1:]) {
			rec[i] = c[1:]
		}
	}
}
