package planner_test

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/ferry-migrate/ferry/planner"
)

// TestWriteCSVEscapesFormulas: names and reasons a spreadsheet would run
// as formulas are written as text (OWASP CSV injection).
func TestWriteCSVEscapesFormulas(t *testing.T) {
	p := &planner.Plan{Unplaced: []planner.Unplaced{{HostID: "h1", Name: "=cmd|' /C calc'!A0", Reason: "-2+3+cmd|' /C calc'!A0"}}}
	var buf bytes.Buffer
	if err := planner.WriteCSV(&buf, p); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if row := rows[1]; row[3] != "'=cmd|' /C calc'!A0" || row[10] != "'-2+3+cmd|' /C calc'!A0" || row[0] != "0" {
		t.Fatalf("row %q", row)
	}
}
