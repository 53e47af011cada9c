package assess

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// TestWriteCSVEscapesFormulas: a host name a spreadsheet would run as a
// formula is written as text (OWASP CSV injection); numbers stay numbers.
func TestWriteCSVEscapesFormulas(t *testing.T) {
	rep := &Report{Results: []Result{{HostID: "h1", Name: "=cmd|' /C calc'!A0", OS: "@SUM(1)", Status: "ready",
		Reasons: []string{"+1 kernel"}, NeedVCPUs: 2, MonthlyAsIs: -1.5}}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	row := rows[1]
	if row[1] != "'=cmd|' /C calc'!A0" || row[2] != "'@SUM(1)" || row[4] != "'+1 kernel" || row[11] != "-1.5" {
		t.Fatalf("row %q", row)
	}
}
