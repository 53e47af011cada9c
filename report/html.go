package report

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/i18n"
)

// WriteHTML writes the printable report: summary, charts (readiness, cost
// as-is vs right-sized, data per wave, the wave calendar) as inline SVG, the
// business case with its assumptions, the waves, the actions needed with
// their host counts and every host that is not ready. Rows stream from src;
// only per-code counts are kept in memory.
func WriteHTML(ctx context.Context, w io.Writer, src Source, lang string) error {
	meta, err := src.Meta(ctx)
	if err != nil {
		return err
	}
	waves, err := src.Waves(ctx)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	e := html.EscapeString
	s := meta.Summary
	htmlLang := "en"
	if i18n.Normalize(lang) == "zh-CN" {
		htmlLang = "zh-CN"
	}
	p(`<!doctype html><html lang="%s"><head><meta charset="utf-8"><title>%s</title><style>
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "Noto Sans", "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif; font-size: 10pt; color: #1f2933; }
h1 { font-size: 18pt; margin: 0 0 4pt; } h2 { font-size: 13pt; margin: 14pt 0 6pt; border-bottom: 1px solid #c0c8d2; break-after: avoid; }
table { border-collapse: collapse; width: 100%%; margin-bottom: 8pt; } th, td { border: 1px solid #dde3ea; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #eef2f6; } td.h { white-space: nowrap; } td.n { text-align: right; white-space: nowrap; } tr { break-inside: avoid; }
.muted { color: #6b7785; font-size: 8.5pt; } .kpis { display: flex; gap: 8pt; flex-wrap: wrap; } .kpi { border: 1px solid #dde3ea; padding: 6pt 8pt; min-width: 110pt; }
.kpi b { display: block; font-size: 14pt; } .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 10pt; } figure { margin: 0; break-inside: avoid; } figcaption { font-weight: bold; margin-bottom: 2pt; }
.page { break-before: page; }
</style></head><body>`, htmlLang, e(L(lang, "title")))
	p(`<h1>%s</h1><div class="muted">%s: %s · %s: %s · %s: %s %s</div>`, e(L(lang, "title")), e(L(lang, "tenant")), e(meta.Tenant),
		e(L(lang, "generated")), meta.Generated.UTC().Format("2006-01-02 15:04 UTC"), e(L(lang, "target")), e(s.Target), e(s.Region))
	money := func(v float64) string {
		if !s.Priced {
			return "—"
		}
		return e(formatMoney(v, s.Currency))
	}
	p(`<div class="kpis">`)
	kpi := func(label, value, id string) {
		p(`<div class="kpi" id="%s">%s<b>%s</b></div>`, id, e(label), value)
	}
	kpi(L(lang, "hosts"), fmt.Sprint(meta.InventoryHosts), "kpi-hosts")
	kpi(L(lang, "assessed"), fmt.Sprint(s.Hosts), "kpi-assessed")
	kpi(L(lang, "costAsIs"), money(s.MonthlyAsIs), "kpi-asis")
	kpi(L(lang, "costRightSized"), money(s.MonthlyRightSized), "kpi-right")
	kpi(L(lang, "storageMonthly"), money(s.StorageMonthly), "kpi-storage")
	kpi(L(lang, "usedData"), fmt.Sprintf("%.1f TiB", float64(s.UsedBytes)/(1<<40)), "kpi-data")
	if pl := meta.Plan; pl != nil {
		kpi(L(lang, "waves"), fmt.Sprint(pl.Waves), "kpi-waves")
		kpi(L(lang, "crossing"), fmt.Sprintf("%.1f %%", pl.CrossingShare), "kpi-crossing")
	}
	p(`</div>`)
	if s.Priced {
		p(`<p class="muted">%s</p>`, e(L(lang, "priceDisclaimer", s.PriceDate, strings.TrimSpace(s.PriceSource))))
	} else {
		p(`<p class="muted">%s</p>`, e(L(lang, "notPriced", s.Target)))
	}
	// Charts.
	p(`<div class="charts">`)
	p(`<figure><figcaption>%s</figcaption>%s</figure>`, e(L(lang, "chartReadiness")), barChart([]bar{
		{L(lang, "ready"), float64(s.Ready), "#67c23a"}, {L(lang, "ready_with_actions"), float64(s.ReadyWithActions), "#e6a23c"},
		{L(lang, "not_ready"), float64(s.NotReady), "#f56c6c"}, {L(lang, "unknown"), float64(s.Unknown), "#909399"},
		{L(lang, "notAssessed"), float64(max(0, meta.InventoryHosts-s.Hosts)), "#c0c8d2"}}, "%.0f"))
	if s.Priced {
		p(`<figure><figcaption>%s (%s)</figcaption>%s</figure>`, e(L(lang, "chartCost")), e(s.Currency), barChart([]bar{
			{L(lang, "costAsIs"), s.MonthlyAsIs, "#909399"}, {L(lang, "costRightSized"), s.MonthlyRightSized, "#67c23a"},
			{L(lang, "storageMonthly"), s.StorageMonthly, "#409eff"}}, "%.0f"))
	}
	if len(waves) > 0 {
		var bars []bar
		for _, w := range waves {
			bars = append(bars, bar{WaveName(lang, w.Ordinal, w.Pilot), gibOf(w.DataBytes), "#409eff"})
		}
		p(`<figure><figcaption>%s</figcaption>%s</figure>`, e(L(lang, "chartData")), barChart(bars, "%.0f"))
		p(`<figure><figcaption>%s</figcaption>%s</figure>`, e(L(lang, "chartCalendar")), calendar(lang, waves))
	}
	p(`</div>`)
	// Business case.
	if c := meta.Case; c != nil {
		p(`<h2>%s</h2><table><tr><th></th><th>%s</th><th>%s</th><th>%s</th></tr>`, e(L(lang, "businessCase")), e(L(lang, "onPremises")), e(L(lang, "cloudAsIs")), e(L(lang, "cloudRight")))
		row := func(label string, a, b, cc float64) {
			p(`<tr><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td></tr>`, e(label), e(formatMoney(a, s.Currency)), e(formatMoney(b, s.Currency)), e(formatMoney(cc, s.Currency)))
		}
		row(L(lang, "compute"), c.OnPremises.Compute, c.CloudAsIs.Compute, c.CloudRightSized.Compute)
		row(L(lang, "storage"), c.OnPremises.Storage, c.CloudAsIs.Storage, c.CloudRightSized.Storage)
		row(L(lang, "licences"), c.OnPremises.Licences, c.CloudAsIs.Licences, c.CloudRightSized.Licences)
		row(L(lang, "facilities"), c.OnPremises.Facilities, c.CloudAsIs.Facilities, c.CloudRightSized.Facilities)
		row(L(lang, "labour"), c.OnPremises.Labour, c.CloudAsIs.Labour, c.CloudRightSized.Labour)
		row(L(lang, "total"), c.OnPremises.Total(), c.CloudAsIs.Total(), c.CloudRightSized.Total())
		p(`</table><p>%s: %d · %s: %d · %s: %d</p>`, e(L(lang, "measured")), c.Measured, e(L(lang, "idle", c.Assumptions.IdleCPUPercent)), c.Idle,
			e(L(lang, "zombie", c.Assumptions.ZombieCPUPercent)), c.Zombie)
		p(`<h2>%s</h2><table id="cashflow"><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>`, e(L(lang, "cashFlow")),
			e(L(lang, "year")), e(L(lang, "stay")), e(L(lang, "onPremRemaining")), e(L(lang, "cloud")), e(L(lang, "migration")), e(L(lang, "savingsYear")), e(L(lang, "cumulative")))
		for _, y := range c.CashFlow {
			p(`<tr><td>%d</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td></tr>`, y.Year,
				e(formatMoney(y.StayOnPremises, s.Currency)), e(formatMoney(y.OnPremises, s.Currency)), e(formatMoney(y.Cloud, s.Currency)),
				e(formatMoney(y.Migration, s.Currency)), e(formatMoney(y.Savings, s.Currency)), e(formatMoney(y.CumulativeSavings, s.Currency)))
		}
		p(`</table><h2>%s</h2><table>`, e(L(lang, "assumptions")))
		for _, a := range assumptionRows(lang, c.Assumptions) {
			p(`<tr><td>%s</td><td class="n">%v</td></tr>`, e(a[0].(string)), a[1])
		}
		p(`</table>`)
	}
	// Waves.
	if len(waves) > 0 {
		p(`<h2 class="page">%s</h2><table id="waves"><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>`, e(L(lang, "waves")),
			e(L(lang, "wave")), e(L(lang, "hosts")), e(L(lang, "data")), e(L(lang, "replication")), e(L(lang, "start")), e(L(lang, "cutover")), e(L(lang, "monthlyRight")))
		for _, w := range waves {
			p(`<tr><td>%s</td><td class="n">%d</td><td class="n">%.1f</td><td class="n">%.1f</td><td>%s</td><td>%s</td><td class="n">%s</td></tr>`,
				e(WaveName(lang, w.Ordinal, w.Pilot)), w.Hosts, gibOf(w.DataBytes), float64(w.ReplicationSeconds)/3600, timeCell(w.Start), timeCell(w.CutoverStart), money(w.MonthlyRightSized))
		}
		p(`</table>`)
	}
	// Actions by frequency, then the hosts that are not ready, streamed.
	actions := map[string]int{}
	notReady := 0
	var nr strings.Builder
	flushNR := func() {
		bw.WriteString(nr.String())
		nr.Reset()
	}
	p(`<h2 class="page">%s</h2><table id="not-ready"><tr><th>%s</th><th>%s</th><th>%s</th></tr>`, e(L(lang, "not_ready")), e(L(lang, "name")), e(L(lang, "os")), e(L(lang, "reasons")))
	err = src.Hosts(ctx, func(h *HostRow) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, f := range h.Findings {
			if f.Kind == i18n.Action {
				actions[f.Msg().Text(lang)]++
			}
		}
		if h.Assessed && h.Readiness == "not_ready" {
			notReady++
			fmt.Fprintf(&nr, `<tr><td class="h">%s</td><td class="h">%s</td><td>%s</td></tr>`, e(h.Name), e(h.OS), e(findings(lang, h.Findings, i18n.Reason)))
			if nr.Len() > 32<<10 {
				flushNR()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	flushNR()
	p(`</table>`)
	type kv struct {
		k string
		n int
	}
	var list []kv
	for k, n := range actions {
		list = append(list, kv{k, n})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].n > list[j].n || list[i].n == list[j].n && list[i].k < list[j].k })
	p(`<h2>%s</h2><table id="actions"><tr><th>%s</th><th>%s</th></tr>`, e(L(lang, "actions")), e(L(lang, "actions")), e(L(lang, "hosts")))
	for _, a := range list {
		p(`<tr><td>%s</td><td class="n">%d</td></tr>`, e(a.k), a.n)
	}
	p(`</table></body></html>`)
	return bw.Flush()
}

type bar struct {
	label string
	value float64
	color string
}

// barChart draws horizontal bars with their values as SVG.
func barChart(bars []bar, format string) string {
	var b strings.Builder
	h := 22*len(bars) + 8
	maxV := 0.0
	for _, x := range bars {
		maxV = math.Max(maxV, x.value)
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="100%%" viewBox="0 0 360 %d" role="img">`, h)
	for i, x := range bars {
		y := 4 + i*22
		wd := 0.0
		if maxV > 0 {
			wd = x.value / maxV * 150
		}
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="10">%s</text><rect x="150" y="%d" width="%.1f" height="14" fill="%s"/><text x="%.1f" y="%d" font-size="10">%s</text>`,
			y+11, html.EscapeString(x.label), y, wd, x.color, 154+wd, y+11, fmt.Sprintf(format, x.value))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// calendar draws the waves as a Gantt chart: replication, then cutover.
func calendar(lang string, waves []WaveRow) string {
	var lo, hi time.Time
	for _, w := range waves {
		if w.Start != nil && (lo.IsZero() || w.Start.Before(lo)) {
			lo = *w.Start
		}
		if w.End != nil && w.End.After(hi) {
			hi = *w.End
		}
	}
	var b strings.Builder
	h := 20*len(waves) + 24
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="100%%" viewBox="0 0 360 %d" role="img">`, h)
	if lo.IsZero() || !hi.After(lo) {
		b.WriteString(`</svg>`)
		return b.String()
	}
	span := hi.Sub(lo).Seconds()
	x := func(t time.Time) float64 { return 80 + t.Sub(lo).Seconds()/span*270 }
	for i, w := range waves {
		y := 4 + i*20
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="9">%s</text>`, y+10, html.EscapeString(WaveName(lang, w.Ordinal, w.Pilot)))
		if w.Start == nil || w.End == nil {
			continue
		}
		cut := *w.End
		if w.CutoverStart != nil {
			cut = *w.CutoverStart
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="12" fill="#409eff"/>`, x(*w.Start), y, math.Max(1, x(cut)-x(*w.Start)))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="12" fill="#f56c6c"/>`, x(cut), y, math.Max(1, x(*w.End)-x(cut)))
	}
	fmt.Fprintf(&b, `<text x="80" y="%d" font-size="9">%s</text><text x="350" y="%d" font-size="9" text-anchor="end">%s</text></svg>`,
		h-4, lo.Format("2006-01-02"), h-4, hi.Format("2006-01-02"))
	return b.String()
}

// formatMoney writes 342317.5 as "342,318 USD".
func formatMoney(v float64, currency string) string {
	neg := v < 0
	n := int64(math.Round(math.Abs(v)))
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	r := string(out)
	if neg {
		r = "-" + r
	}
	if currency == "" {
		currency = "USD"
	}
	return r + " " + currency
}
