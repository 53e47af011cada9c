package report

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/i18n"
)

// WriteJiraCSV writes one ticket per host of wave (1-based) in the layout
// Jira's CSV issue import maps without editing: Summary, Issue Type,
// Description (the host's steps), Labels, Priority, Start date, Due date
// (the cutover window), Assignee (the host's owner), Component/s (its
// application). Every cell is escaped against formula injection.
func WriteJiraCSV(ctx context.Context, w io.Writer, src Source, wave int, lang string) error {
	cw := csv.NewWriter(w)
	header := []string{"Summary", "Issue Type", "Description", "Labels", "Priority", "Start date", "Due date", "Assignee", "Component/s"}
	if err := cw.Write(header); err != nil {
		return err
	}
	waveLabel := strings.ReplaceAll(WaveName("en", wave, false), " ", "-")
	n := 0
	err := src.Hosts(ctx, func(h *HostRow) error {
		if h.Wave != wave {
			return nil
		}
		n++
		var steps []string
		steps = append(steps, L(lang, "readiness")+": "+readinessLabel(lang, h.Readiness))
		for _, m := range i18n.Of(h.Findings, i18n.Reason) {
			steps = append(steps, "- "+m.Text(lang))
		}
		for _, m := range i18n.Of(h.Findings, i18n.Action) {
			steps = append(steps, "- "+m.Text(lang))
		}
		if h.InstanceRightSized != "" {
			steps = append(steps, L(lang, "instanceRight")+": "+h.InstanceRightSized)
		}
		steps = append(steps, fmt.Sprintf("%s: %s → %s", L(lang, "cutover"), timeCell(h.CutoverStart), timeCell(h.CutoverEnd)))
		if h.Group != "" {
			steps = append(steps, L(lang, "group")+": "+h.Group)
		}
		if h.Reason != "" {
			steps = append(steps, L(lang, "reason")+": "+h.ReasonText(lang))
		}
		prio := "Medium"
		switch h.Criticality {
		case "critical":
			prio = "Highest"
		case "high":
			prio = "High"
		case "low":
			prio = "Low"
		}
		if h.Readiness == "not_ready" {
			prio = "Highest"
		}
		due := ""
		if h.CutoverEnd != nil {
			due = h.CutoverEnd.UTC().Format("2006-01-02")
		}
		start := ""
		if h.WaveStart != nil {
			start = h.WaveStart.UTC().Format("2006-01-02")
		}
		row := []string{fmt.Sprintf("%s: %s", WaveName(lang, wave, false), h.Name), "Task", strings.Join(steps, "\n"),
			"ferry " + waveLabel, prio, start, due, h.Owner, h.App}
		return cw.Write(ferry.CSVSafeRecord(row))
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
