package report

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/ferry-migrate/ferry/i18n"
)

// Sheets are the workbook's sheets, in order. Their names stay English in
// both languages so that scripts find them; the headers are translated.
var Sheets = []string{"Summary", "Inventory", "Readiness", "Sizing & Cost", "Dependencies", "Move groups", "Waves", "Schedule"}

const gib = float64(1 << 30)

func gibOf(b int64) float64 { return math.Round(float64(b)/gib*10) / 10 }

func timeCell(t *time.Time) any {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func floatCell(p *float64) any {
	if p == nil {
		return ""
	}
	return *p
}

// WriteXLSX writes the workbook to w. Each sheet goes through excelize's
// stream writer (rows are spilled to a temporary file past a few MiB), so
// memory does not grow with the estate.
func WriteXLSX(ctx context.Context, w io.Writer, src Source, lang string) error {
	meta, err := src.Meta(ctx)
	if err != nil {
		return err
	}
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", Sheets[0]); err != nil {
		return err
	}
	for _, s := range Sheets[1:] {
		if _, err := f.NewSheet(s); err != nil {
			return err
		}
	}
	bold, _ := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	sheet := func(name string, widths []float64, header []string, rows func(add func(...any) error) error) error {
		sw, err := f.NewStreamWriter(name)
		if err != nil {
			return err
		}
		for i, wd := range widths {
			if err := sw.SetColWidth(i+1, i+1, wd); err != nil {
				return err
			}
		}
		n := 1
		put := func(style int, vals ...any) error {
			cell, _ := excelize.CoordinatesToCellName(1, n)
			n++
			cells := make([]any, len(vals))
			for i, v := range vals {
				if style != 0 {
					cells[i] = excelize.Cell{StyleID: style, Value: v}
				} else {
					cells[i] = v
				}
			}
			return sw.SetRow(cell, cells)
		}
		if header != nil {
			h := make([]any, len(header))
			for i, k := range header {
				h[i] = L(lang, k)
			}
			if err := put(bold, h...); err != nil {
				return err
			}
		}
		if err := rows(func(v ...any) error { return put(0, v...) }); err != nil {
			return err
		}
		return sw.Flush()
	}
	// Summary: label and value pairs.
	s := meta.Summary
	err = sheet("Summary", []float64{44, 60}, nil, func(add func(...any) error) error {
		rows := [][2]any{
			{L(lang, "title"), ""},
			{L(lang, "tenant"), meta.Tenant},
			{L(lang, "generated"), meta.Generated.UTC().Format("2006-01-02 15:04 UTC")},
			{L(lang, "target"), s.Target},
			{L(lang, "region"), s.Region},
			{L(lang, "hosts"), meta.InventoryHosts},
			{L(lang, "assessed"), s.Hosts},
			{L(lang, "ready"), s.Ready},
			{L(lang, "ready_with_actions"), s.ReadyWithActions},
			{L(lang, "not_ready"), s.NotReady},
			{L(lang, "unknown"), s.Unknown},
		}
		if s.Priced {
			rows = append(rows, [][2]any{
				{L(lang, "costAsIs") + " (" + s.Currency + ")", s.MonthlyAsIs},
				{L(lang, "costRightSized") + " (" + s.Currency + ")", s.MonthlyRightSized},
				{L(lang, "storageMonthly") + " (" + s.Currency + ")", s.StorageMonthly},
				{L(lang, "savings") + " (%)", s.SavingsPercent},
				{L(lang, "prices"), L(lang, "priceDisclaimer", s.PriceDate, s.PriceSource)},
			}...)
		} else {
			rows = append(rows, [2]any{L(lang, "prices"), L(lang, "notPriced", s.Target)})
		}
		rows = append(rows, [][2]any{
			{L(lang, "usedData") + " (GiB)", gibOf(s.UsedBytes)},
			{L(lang, "transfer") + " (h)", math.Round(float64(s.TransferSeconds)/36) / 100},
			{L(lang, "offlineSeeding"), s.OfflineSeedingHosts},
		}...)
		if p := meta.Plan; p != nil {
			rows = append(rows, [][2]any{
				{L(lang, "plan"), p.Name},
				{L(lang, "waves"), p.Waves},
				{L(lang, "placed"), fmt.Sprintf("%d / %d", p.Placed, p.Hosts)},
				{L(lang, "crossing") + " (%)", p.CrossingShare},
				{L(lang, "start"), timeCell(p.Start)},
				{L(lang, "end"), timeCell(p.End)},
			}...)
		} else {
			rows = append(rows, [2]any{L(lang, "plan"), L(lang, "noPlan")})
		}
		if c := meta.Case; c != nil {
			rows = append(rows, [][2]any{
				{L(lang, "businessCase"), ""},
				{L(lang, "onPremises") + " · " + L(lang, "total"), c.OnPremises.Total()},
				{L(lang, "cloudAsIs") + " · " + L(lang, "total"), c.CloudAsIs.Total()},
				{L(lang, "cloudRight") + " · " + L(lang, "total"), c.CloudRightSized.Total()},
				{L(lang, "idle", c.Assumptions.IdleCPUPercent), c.Idle},
				{L(lang, "zombie", c.Assumptions.ZombieCPUPercent), c.Zombie},
			}...)
			for _, y := range c.CashFlow {
				rows = append(rows, [2]any{fmt.Sprintf("%s %d · %s", L(lang, "year"), y.Year, L(lang, "savingsYear")), y.Savings})
			}
			for _, a := range assumptionRows(lang, c.Assumptions) {
				rows = append(rows, [2]any{L(lang, "assumptions") + " · " + a[0].(string), a[1]})
			}
		}
		for _, r := range rows {
			if err := add(r[0], r[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	hostSheet := func(name string, widths []float64, header []string, row func(h *HostRow) []any) error {
		return sheet(name, widths, header, func(add func(...any) error) error {
			return src.Hosts(ctx, func(h *HostRow) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				return add(row(h)...)
			})
		})
	}
	err = hostSheet("Inventory", []float64{24, 30, 30, 14, 12, 16, 18, 8, 12, 14, 14, 30, 10, 10},
		[]string{"name", "fqdn", "os", "environment", "criticality", "owner", "application", "cpus", "memoryGiB", "diskGiB", "usedGiB", "ips", "cpuP95", "memP95"},
		func(h *HostRow) []any {
			return []any{h.Name, h.FQDN, h.OS, h.Environment, h.Criticality, h.Owner, h.App, h.CPUs, math.Round(float64(h.MemoryMiB)/1024*10) / 10,
				gibOf(h.DiskProvisioned), gibOf(h.DiskUsed), strings.Join(h.IPs, ", "), floatCell(h.CPUP95), floatCell(h.MemoryP95)}
		})
	if err != nil {
		return err
	}
	err = hostSheet("Readiness", []float64{24, 30, 20, 60, 80, 40},
		[]string{"name", "os", "readiness", "reasons", "actions", "missing"},
		func(h *HostRow) []any {
			if !h.Assessed {
				return []any{h.Name, h.OS, L(lang, "notAssessed"), "", "", ""}
			}
			return []any{h.Name, h.OS, readinessLabel(lang, h.Readiness), findings(lang, h.Findings, i18n.Reason),
				findings(lang, h.Findings, i18n.Action), findings(lang, h.Findings, i18n.Missing)}
		})
	if err != nil {
		return err
	}
	err = hostSheet("Sizing & Cost", []float64{24, 8, 12, 10, 12, 18, 14, 18, 14, 14, 14, 50},
		[]string{"name", "cpus", "memoryGiB", "needVcpus", "needMem", "instanceAsIs", "monthlyAsIs", "instanceRight", "monthlyRight", "storageMonthly", "transferHours", "notes"},
		func(h *HostRow) []any {
			if !h.Assessed {
				return []any{h.Name, h.CPUs, math.Round(float64(h.MemoryMiB)/1024*10) / 10, "", "", "", "", "", "", "", "", L(lang, "notAssessed")}
			}
			money := func(v float64) any {
				if !s.Priced {
					return ""
				}
				return v
			}
			return []any{h.Name, h.CPUs, math.Round(float64(h.MemoryMiB)/1024*10) / 10, h.NeedVCPUs, h.NeedMemoryGiB, h.InstanceAsIs, money(h.MonthlyAsIs),
				h.InstanceRightSized, money(h.MonthlyRightSized), money(h.StorageMonthly), math.Round(float64(h.TransferSeconds)/36) / 100,
				findings(lang, h.Findings, i18n.Note)}
		})
	if err != nil {
		return err
	}
	err = sheet("Dependencies", []float64{24, 28, 8, 9, 16, 12, 14, 12}, []string{"src", "dst", "port", "protocol", "process", "count", "bytes", "crossesWaves"},
		func(add func(...any) error) error {
			return src.Connections(ctx, func(c *ConnRow) error {
				cross := ""
				if c.SrcWave > 0 && c.DstWav > 0 {
					cross = L(lang, "no")
					if c.SrcWave != c.DstWav {
						cross = L(lang, "yes")
					}
				}
				return add(c.Src, c.Dst, c.Port, c.Protocol, c.Proc, c.Count, c.Bytes, cross)
			})
		})
	if err != nil {
		return err
	}
	err = sheet("Move groups", []float64{30, 18, 8, 12, 90}, []string{"group", "wave", "hosts", "data", "members"},
		func(add func(...any) error) error {
			return src.Groups(ctx, func(g *GroupRow) error {
				return add(g.Name, g.Wave, g.Hosts, gibOf(g.Bytes), strings.Join(g.Members, ", "))
			})
		})
	if err != nil {
		return err
	}
	waves, err := src.Waves(ctx)
	if err != nil {
		return err
	}
	err = sheet("Waves", []float64{20, 8, 8, 12, 12, 14, 18, 18, 18, 18, 14, 16},
		[]string{"wave", "hosts", "group", "data", "wire", "replication", "start", "cutover", "cutoverEnd", "end", "status", "monthlyRight"},
		func(add func(...any) error) error {
			for _, w := range waves {
				if err := add(WaveName(lang, w.Ordinal, w.Pilot), w.Hosts, w.Groups, gibOf(w.DataBytes), gibOf(w.WireBytes),
					math.Round(float64(w.ReplicationSeconds)/36)/100, timeCell(w.Start), timeCell(w.CutoverStart), timeCell(w.CutoverEnd),
					timeCell(w.End), w.Status, w.MonthlyRightSized); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = hostSheet("Schedule", []float64{20, 24, 24, 18, 18, 18, 12, 12, 70},
		[]string{"wave", "name", "group", "start", "cutover", "cutoverEnd", "downtime", "manual", "reason"},
		func(h *HostRow) []any {
			manual := L(lang, "no")
			if h.Manual {
				manual = L(lang, "yes")
			}
			return []any{WaveName(lang, h.Wave, false), h.Name, h.Group, timeCell(h.WaveStart), timeCell(h.CutoverStart), timeCell(h.CutoverEnd),
				h.DowntimeMinutes, manual, h.ReasonText(lang)}
		})
	if err != nil {
		return err
	}
	return f.Write(w)
}

// assumptionRows lists the assumptions as label and value.
func assumptionRows(lang string, a Assumptions) [][2]any {
	return [][2]any{
		{L(lang, "a.computePerVcpuMonth"), a.ComputePerVCPUMonth},
		{L(lang, "a.storagePerGibMonth"), a.StoragePerGiBMonth},
		{L(lang, "a.windowsLicencePerVcpuMonth"), a.WindowsLicencePerVCPUMonth},
		{L(lang, "a.virtualisationPerVcpuMonth"), a.VirtualisationPerVCPUMonth},
		{L(lang, "a.facilitiesPerServerMonth"), a.FacilitiesPerServerMonth},
		{L(lang, "a.adminCostPerYear"), a.AdminCostPerYear},
		{L(lang, "a.serversPerAdmin"), a.ServersPerAdmin},
		{L(lang, "a.cloudLabourShare"), a.CloudLabourShare},
		{L(lang, "a.migrationPerServer"), a.MigrationPerServer},
		{L(lang, "a.years"), a.Years},
		{L(lang, "a.idleCpuPercent"), a.IdleCPUPercent},
		{L(lang, "a.zombieCpuPercent"), a.ZombieCPUPercent},
	}
}
