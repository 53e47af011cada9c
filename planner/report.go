package planner

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferry-migrate/ferry"
)

// WriteTable prints the plan for a person: one line per wave, then (with
// members) every host and its reason, then cycles, infeasibilities and
// warnings.
func WriteTable(w io.Writer, p *Plan, members bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tHOSTS\tDATA\tREPLICATION\tHOURS\tCUTOVER\tEND\tCONFIDENCE\tRISK")
	for _, wv := range p.Waves {
		name := strconv.Itoa(wv.Number)
		if wv.Pilot {
			name += " (pilot)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s → %s\t%.1f\t%s\t%s\t%s\t%s\n", name, wv.Hosts, fmtBytes(wv.Bytes),
			wv.ReplicationStart.Format("2006-01-02 15:04"), wv.ReplicationEnd.Format("01-02 15:04"), wv.ReplicationHours,
			wv.CutoverStart.Format("Mon 2006-01-02 15:04"), wv.End.Format("2006-01-02 15:04"), wv.Confidence, wv.Risk)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	mt := p.Metrics
	fmt.Fprintf(w, "\n%d waves, %d/%d hosts placed in %d groups; crossing dependency weight %d of %d (%s); %s → %s (%.0f days)\n",
		mt.Waves, mt.Placed, mt.Hosts, mt.Groups, mt.CrossingWeight, mt.TotalWeight, pct(mt.CrossingShare),
		mt.Start.Format("2006-01-02"), mt.End.Format("2006-01-02"), mt.DurationHours/24)
	if mt.NonSharedWeight != mt.TotalWeight {
		share := 0.0
		if mt.NonSharedWeight > 0 {
			share = float64(mt.NonSharedCrossingWeight) / float64(mt.NonSharedWeight)
		}
		fmt.Fprintf(w, "without the shared services' edges: %d of %d (%s)\n", mt.NonSharedCrossingWeight, mt.NonSharedWeight, pct(share))
	}
	fmt.Fprintf(w, "%d/%d applications whole in one wave; %d suggested from traffic; %d shared service(s)\n",
		mt.ApplicationsWhole, mt.Applications, mt.Suggestions, mt.SharedServices)
	for i, s := range p.SharedServices {
		if i == 10 && !members {
			fmt.Fprintf(w, "  ... %d more shared services (see the JSON)\n", len(p.SharedServices)-10)
			break
		}
		fmt.Fprintf(w, "  shared %s: %s; policy %s, wave %d\n", s.Name, s.Why, s.Policy, s.Wave)
	}
	if len(mt.CriticalPath) > 1 {
		fmt.Fprintf(w, "critical path (%d groups): %s\n", len(mt.CriticalPath), strings.Join(mt.CriticalPath, " → "))
	}
	if members {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\nWAVE\tHOST\tDATA\tREASON")
		for _, wv := range p.Waves {
			for _, m := range wv.Members {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", wv.Number, m.Name, fmtBytes(m.Bytes), m.Reason)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(p.Cycles) > 0 {
		fmt.Fprintf(w, "\n%d dependency cycle(s) (their hosts move together):\n", len(p.Cycles))
		for i, c := range p.Cycles {
			if i == 20 && !members {
				fmt.Fprintf(w, "  ... %d more (see the JSON)\n", len(p.Cycles)-20)
				break
			}
			fmt.Fprintf(w, "  %s\n", c.Chain)
		}
	}
	if len(p.Infeasible) > 0 {
		fmt.Fprintf(w, "\nCONFLICTS (%d):\n", len(p.Infeasible))
		for _, inf := range p.Infeasible {
			fmt.Fprintf(w, "  [%s] %s\n    → %s\n", inf.Kind, inf.Message, inf.Resolution)
		}
		fmt.Fprintf(w, "%d host(s) not placed\n", len(p.Unplaced))
	}
	if len(p.Waived) > 0 {
		fmt.Fprintf(w, "\nWAIVED WAVE RULES (%d):\n", len(p.Waived))
		for i, s := range p.Waived {
			if i == 20 && !members {
				fmt.Fprintf(w, "  ... %d more (see the JSON)\n", len(p.Waived)-20)
				break
			}
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(w, "\nWARNINGS (%d):\n", len(p.Warnings))
		for i, s := range p.Warnings {
			if i == 20 && !members {
				fmt.Fprintf(w, "  ... %d more (see the JSON)\n", len(p.Warnings)-20)
				break
			}
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	return nil
}

// WriteCSV writes one row per placed host, then one per unplaced host (wave
// 0). Cells a spreadsheet would run as formulas are escaped (ferry.CSVSafe).
func WriteCSV(w io.Writer, p *Plan) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"wave", "pilot", "host_id", "name", "group", "bytes", "replication_start", "replication_end", "cutover_start", "downtime_minutes", "reason"})
	for _, wv := range p.Waves {
		for _, m := range wv.Members {
			cw.Write(ferry.CSVSafeRecord([]string{strconv.Itoa(wv.Number), strconv.FormatBool(wv.Pilot), m.HostID, m.Name, m.Group, strconv.FormatInt(m.Bytes, 10),
				wv.ReplicationStart.Format(time.RFC3339), wv.ReplicationEnd.Format(time.RFC3339), wv.CutoverStart.Format(time.RFC3339),
				strconv.FormatFloat(m.DowntimeMinutes, 'f', -1, 64), m.Reason}))
		}
	}
	for _, u := range p.Unplaced {
		cw.Write(ferry.CSVSafeRecord([]string{"0", "false", u.HostID, u.Name, "", "", "", "", "", "", u.Reason}))
	}
	cw.Flush()
	return cw.Error()
}
