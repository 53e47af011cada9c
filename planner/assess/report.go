package assess

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ferry-migrate/ferry"
)

// WriteTable prints one line per host and the totals.
func WriteTable(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tOS\tSTATUS\tAS-IS\tRIGHT-SIZED\tMONTHLY\tTRANSFER\tDETAIL")
	for _, r := range rep.Results {
		detail := strings.Join(append(append(append([]string{}, r.Reasons...), r.Actions...), prefix("missing: ", r.Missing)...), "; ")
		if r.OfflineSeeding {
			detail = "OFFLINE SEEDING; " + detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f → %.0f\t%s\t%s\n", r.Name, r.OS, r.Status, orDash(r.InstanceAsIs), orDash(r.InstanceRightSized),
			r.MonthlyAsIs, r.MonthlyRightSized, hours(r.TransferHours), detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t := rep.Totals
	fmt.Fprintf(w, "\n%d hosts for %s/%s: %d ready, %d ready with actions, %d not ready, %d unknown\n", t.Hosts, rep.Target, rep.Region,
		t.ByStatus[Ready], t.ByStatus[ReadyWithActions], t.ByStatus[NotReady], t.ByStatus[Unknown])
	fmt.Fprintf(w, "compute per month: %.0f %s as-is, %.0f right-sized (%.1f%% less); storage %.0f %s\n", t.MonthlyAsIs, t.Currency, t.MonthlyRightSized, t.Savings, t.StorageMonthly, t.Currency)
	fmt.Fprintf(w, "data %s; whole estate over the link: %s; offline seeding recommended for %d host(s), %s\n",
		humanBytes(t.UsedBytes), hours(t.TransferHours), t.OfflineSeedingHosts, humanBytes(t.OfflineSeedingBytes))
	fmt.Fprintf(w, "prices: %s\n", t.PriceSource)
	return nil
}

// WriteCSV writes one row per host. Cells a spreadsheet would run as
// formulas are escaped (ferry.CSVSafe).
func WriteCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"host_id", "name", "os", "status", "reasons", "actions", "missing", "need_vcpus", "need_memory_gib", "instance_as_is", "instance_right_sized",
		"monthly_as_is", "monthly_right_sized", "storage_monthly", "used_bytes", "transfer_hours", "offline_seeding"})
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	for _, r := range rep.Results {
		cw.Write(ferry.CSVSafeRecord([]string{r.HostID, r.Name, r.OS, string(r.Status), strings.Join(r.Reasons, "; "), strings.Join(r.Actions, "; "), strings.Join(r.Missing, "; "),
			strconv.Itoa(r.NeedVCPUs), f(r.NeedMemoryGiB), r.InstanceAsIs, r.InstanceRightSized, f(r.MonthlyAsIs), f(r.MonthlyRightSized), f(r.StorageMonthly),
			strconv.FormatInt(r.UsedBytes, 10), f(r.TransferHours), strconv.FormatBool(r.OfflineSeeding)}))
	}
	cw.Flush()
	return cw.Error()
}

func prefix(p string, s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = p + x
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func hours(h float64) string {
	switch {
	case h >= 24*365:
		return fmt.Sprintf("%.1f years", h/24/365)
	case h >= 48:
		return fmt.Sprintf("%.1f days", h/24)
	}
	return fmt.Sprintf("%.1f h", h)
}
