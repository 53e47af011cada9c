package ferry

import (
	"strconv"
	"strings"
)

// CSVSafe returns a cell as it may be written to a CSV a person will open in
// a spreadsheet: a cell the spreadsheet would run as a formula — one that
// starts with =, +, -, @, a tab or a carriage return (OWASP, "CSV
// Injection") — gets a leading single quote, so it shows as the text it is.
// A plain number ("-5", "+1.5e3") is not a formula and is left alone.
// Values are stored as they were given; every CSV export passes its cells
// through here (the importer takes the quote off again, see
// discovery/importer).
func CSVSafe(cell string) string {
	if cell == "" || !strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return cell
	}
	if _, err := strconv.ParseFloat(cell, 64); err == nil {
		return cell
	}
	return "'" + cell
}

// CSVSafeRecord is CSVSafe for every cell of a record (a copy).
func CSVSafeRecord(rec []string) []string {
	out := make([]string, len(rec))
	for i, c := range rec {
		out[i] = CSVSafe(c)
	}
	return out
}
