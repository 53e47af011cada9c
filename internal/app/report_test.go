package app_test

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/ent/auditevent"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/ent/plan"
	"github.com/ferry-migrate/ferry/ent/wave"
	"github.com/ferry-migrate/ferry/ent/wavemember"
	"github.com/ferry-migrate/ferry/i18n"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/report"
)

// get downloads path with the client's session.
func (c *client) download(path string) (int, http.Header, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

var reportOS = []string{"Ubuntu 22.04 LTS", "CentOS Linux 7.9", "Microsoft Windows Server 2019 Standard", "CentOS Linux 5.11", "Rocky Linux 9.3", "Windows Server 2012 R2"}

// seedReportEstate writes n hosts (three tiers per application, some
// idle), their disks and connections in the tenant, assesses them and
// builds a plan through the API. It returns the plan id.
func seedReportEstate(t *testing.T, ts *testServer, admin *client, n int) int {
	t.Helper()
	db := ts.App.DB.Client
	ctx := viewer.TenantContext(viewer.SystemContext(t.Context()), tenantID(t, ts, "default"))
	var hs []*ent.HostCreate
	for i := 0; i < n; i++ {
		cpu := float64(5 + i%40)
		if i%17 == 0 {
			cpu = 0.5 // idle, and a zombie when nothing talks to it
		}
		hs = append(hs, db.Host.Create().SetName(fmt.Sprintf("rep-%04d", i)).SetOs(reportOS[i%len(reportOS)]).SetArch("x86_64").
			SetBootMode(host.BootModeBios).SetCpus(2+i%8).SetMemoryMib(int64(4096*(1+i%4))).SetDiskProvisionedBytes(int64(50+i)<<30).
			SetDiskUsedBytes(int64(20+i)<<30).SetCPUP95(cpu).SetMemoryP95(40).SetOwner(fmt.Sprintf("team-%d", i%3)).
			SetEnvironment(host.EnvironmentProduction).SetIps([]string{fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)}))
	}
	created := db.Host.CreateBulk(hs...).SaveX(ctx)
	var cs []*ent.ConnectionCreate
	for i := 1; i < len(created); i++ {
		if i%17 == 0 || (i-1)%17 == 0 {
			continue
		}
		cs = append(cs, db.Connection.Create().SetSrcHostID(created[i-1].ID).SetDstHostID(created[i].ID).SetPort(5432).SetCount(int64(10+i)).SetBytes(int64(1000*i)))
	}
	cs = append(cs, db.Connection.Create().SetSrcHostID(created[1].ID).SetDstAddress("=cmd|' /C calc'!A0").SetPort(443).SetCount(3))
	db.Connection.CreateBulk(cs...).ExecX(ctx)
	admin.mustGQL(`mutation { runAssessment(target: "alibaba") { hosts } }`, nil)
	d := admin.mustGQL(`mutation($in: GeneratePlanInput!) { generatePlan(input: $in) { id status } }`,
		map[string]any{"in": map[string]any{"name": "report plan", "constraints": map[string]any{"bandwidth": "1Gbps", "start": "2027-01-04", "maxHostsPerWave": 15, "pilotHosts": 3}}})
	id, _ := strconv.Atoi(dig(d, "generatePlan", "id").(string))
	return id
}

// TestReportWorkbookMatchesDatabase downloads the XLSX as a signed-in
// user, opens it with excelize and compares every sheet with the database.
func TestReportWorkbookMatchesDatabase(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	planID := seedReportEstate(t, ts, admin, 60)
	for _, lang := range []string{"en", "zh-CN"} {
		status, hdr, body := admin.download(fmt.Sprintf("/api/v1/reports/assessment.xlsx?plan=%d&lang=%s", planID, lang))
		if status != 200 {
			t.Fatalf("xlsx %s: status %d: %s", lang, status, body)
		}
		if !strings.Contains(hdr.Get("Content-Disposition"), "ferry-assessment-") {
			t.Errorf("content disposition %q", hdr.Get("Content-Disposition"))
		}
		f, err := excelize.OpenReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("excelize cannot open the workbook: %v", err)
		}
		if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(report.Sheets, "|") {
			t.Fatalf("sheets %q, want %q", got, report.Sheets)
		}
		checkWorkbook(t, ts, f, planID, lang)
		f.Close()
	}
}

func checkWorkbook(t *testing.T, ts *testServer, f *excelize.File, planID int, lang string) {
	db := ts.App.DB.Client
	ctx := viewer.TenantContext(viewer.SystemContext(t.Context()), tenantID(t, ts, "default"))
	rows := func(sheet string) [][]string {
		r, err := f.GetRows(sheet)
		if err != nil {
			t.Fatalf("%s: %v", sheet, err)
		}
		return r
	}
	hosts := db.Host.Query().Order(ent.Asc(host.FieldID)).WithAssessments().AllX(ctx)
	byName := map[string]*ent.Host{}
	for _, h := range hosts {
		byName[h.Name] = h
	}
	// Summary: the totals are the database's sums over every row.
	summary := map[string]string{}
	for _, r := range rows("Summary") {
		if len(r) >= 2 {
			summary[r[0]] = r[1]
		}
	}
	var sums []struct {
		AsIs  float64 `json:"as_is"`
		Right float64 `json:"right"`
		N     int     `json:"n"`
	}
	db.Assessment.Query().Where(assessment.Target("alibaba")).Aggregate(ent.As(ent.Sum(assessment.FieldMonthlyCostAsIs), "as_is"),
		ent.As(ent.Sum(assessment.FieldMonthlyCostRightSized), "right"), ent.As(ent.Count(), "n")).ScanX(ctx, &sums)
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	if got := num(summary[report.L(lang, "costRightSized")+" (USD)"]); math.Abs(got-sums[0].Right) > 0.01 {
		t.Errorf("%s summary right-sized %v, database %v", lang, got, sums[0].Right)
	}
	if got := num(summary[report.L(lang, "costAsIs")+" (USD)"]); math.Abs(got-sums[0].AsIs) > 0.01 {
		t.Errorf("%s summary as-is %v, database %v", lang, got, sums[0].AsIs)
	}
	if got := summary[report.L(lang, "hosts")]; got != strconv.Itoa(len(hosts)) {
		t.Errorf("%s summary hosts %s, database %d", lang, got, len(hosts))
	}
	// Inventory, Readiness and Sizing & Cost: one row per host, in id order, with its facts.
	for _, sheet := range []string{"Inventory", "Readiness", "Sizing & Cost", "Schedule"} {
		r := rows(sheet)
		if len(r)-1 != len(hosts) {
			t.Errorf("%s %s: %d rows, database %d hosts", lang, sheet, len(r)-1, len(hosts))
		}
	}
	for i, r := range rows("Inventory")[1:] {
		h := hosts[i]
		if r[0] != h.Name || r[2] != h.Os || r[7] != strconv.Itoa(h.Cpus) {
			t.Errorf("Inventory row %d = %q, database %s %s %d", i+2, r[:8], h.Name, h.Os, h.Cpus)
		}
	}
	for i, r := range rows("Readiness")[1:] {
		h := hosts[i]
		a := h.Edges.Assessments[0]
		want := []string{h.Name, h.Os, report.L(lang, string(a.Readiness))}
		if r[0] != want[0] || r[2] != want[2] {
			t.Errorf("Readiness row %d = %q, want %q", i+2, r[:3], want)
		}
		if acts := i18n.Texts(lang, i18n.Of(a.Findings, i18n.Action)); len(acts) > 0 && (len(r) < 5 || r[4] != strings.Join(acts, "; ")) {
			t.Errorf("Readiness row %d actions %q, database %q", i+2, r, acts)
		}
		if lang == "zh-CN" && strings.Contains(h.Os, "CentOS Linux 7") && !strings.Contains(strings.Join(r, " "), "终止支持") {
			t.Errorf("zh-CN Readiness row %d of %s has no Chinese end-of-life action: %q", i+2, h.Os, r)
		}
	}
	for i, r := range rows("Sizing & Cost")[1:] {
		a := hosts[i].Edges.Assessments[0]
		if r[7] != a.InstanceType || math.Abs(num(r[8])-a.MonthlyCostRightSized) > 0.001 || math.Abs(num(r[9])-a.StorageMonthly) > 0.001 {
			t.Errorf("Sizing row %d = %q, database %s %v %v", i+2, r, a.InstanceType, a.MonthlyCostRightSized, a.StorageMonthly)
		}
	}
	// Dependencies: every connection once, external addresses as written (cells are not formulas).
	deps := rows("Dependencies")[1:]
	if n := db.Connection.Query().CountX(ctx); len(deps) != n {
		t.Errorf("Dependencies: %d rows, database %d connections", len(deps), n)
	}
	foundExt := false
	for _, r := range deps {
		if len(r) > 1 && r[1] == "=cmd|' /C calc'!A0" {
			foundExt = true
		}
	}
	if !foundExt {
		t.Errorf("the external destination is missing from Dependencies")
	}
	if fs, _ := f.GetCellFormula("Dependencies", "B2"); fs != "" {
		t.Errorf("a dependency cell holds a formula %q", fs)
	}
	// Waves and Move groups against the plan's rows.
	ws := db.Wave.Query().Where(wave.HasPlanWith(plan.ID(planID))).Order(ent.Asc(wave.FieldOrdinal)).AllX(ctx)
	wr := rows("Waves")[1:]
	if len(wr) != len(ws) {
		t.Fatalf("Waves: %d rows, database %d", len(wr), len(ws))
	}
	members := 0
	for i, w := range ws {
		if wr[i][0] != report.WaveName(lang, w.Ordinal, w.Pilot) || wr[i][1] != strconv.Itoa(w.HostCount) {
			t.Errorf("Waves row %d = %q, database wave %d with %d hosts", i+2, wr[i][:2], w.Ordinal, w.HostCount)
		}
		members += w.HostCount
	}
	groups := 0
	for _, r := range rows("Move groups")[1:] {
		n, _ := strconv.Atoi(r[2])
		groups += n
	}
	if wm := db.WaveMember.Query().Where(wavemember.HasWaveWith(wave.HasPlanWith(plan.ID(planID)))).CountX(ctx); groups != wm || members != wm {
		t.Errorf("Move groups hold %d hosts, waves %d, database %d members", groups, members, wm)
	}
}

// TestReportPDF renders the printable report with headless Chromium in
// both languages and reads it back with pdftotext: pages, the figures of
// the database, the Chinese text. The pages are also kept as PNG under
// build/report-pages when FERRY_REPORT_PAGES is set, to look at.
func TestReportPDF(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	planID := seedReportEstate(t, ts, admin, 60)
	db := ts.App.DB.Client
	ctx := viewer.TenantContext(viewer.SystemContext(t.Context()), tenantID(t, ts, "default"))
	notReady := db.Assessment.Query().Where(assessment.ReadinessEQ(assessment.ReadinessNotReady)).WithHost().AllX(ctx)
	for _, lang := range []string{"en", "zh-CN"} {
		status, _, body := admin.download(fmt.Sprintf("/api/v1/reports/assessment.pdf?plan=%d&lang=%s", planID, lang))
		if status != 200 || !bytes.HasPrefix(body, []byte("%PDF")) {
			t.Fatalf("pdf %s: status %d, %d bytes: %.200s", lang, status, len(body), body)
		}
		dir := t.TempDir()
		pdf := filepath.Join(dir, "report.pdf")
		os.WriteFile(pdf, body, 0o600)
		info, err := exec.Command("pdfinfo", pdf).CombinedOutput()
		if err != nil {
			t.Fatalf("pdfinfo: %v\n%s", err, info)
		}
		pages := 0
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "Pages:"); ok {
				pages, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if pages < 3 {
			t.Errorf("%s: %d pages; summary, waves and hosts start on pages of their own", lang, pages)
		}
		txt, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext: %v", err)
		}
		text := string(txt)
		flat := strings.Join(strings.Fields(text), "") // pdftotext drops or adds spaces around CJK
		var sums []struct {
			Right float64 `json:"right"`
		}
		db.Assessment.Query().Aggregate(ent.As(ent.Sum(assessment.FieldMonthlyCostRightSized), "right")).ScanX(ctx, &sums)
		money := fmt.Sprintf("%s USD", thousands(int64(math.Round(sums[0].Right))))
		if !strings.Contains(text, money) {
			t.Errorf("%s: the right-sized total %s of the database is not in the PDF", lang, money)
		}
		for _, a := range notReady {
			if !strings.Contains(text, a.Edges.Host.Name) {
				t.Errorf("%s: not-ready host %s missing from the PDF", lang, a.Edges.Host.Name)
			}
		}
		want := []string{"Business case", "Cash flow by year", "Wave 1"}
		if lang == "zh-CN" {
			want = []string{"业务论证", "逐年现金流", "第1批", "终止支持"}
		}
		for _, w := range want {
			if !strings.Contains(flat, strings.ReplaceAll(w, " ", "")) {
				t.Errorf("%s: %q not in the PDF text", lang, w)
			}
		}
		if out := os.Getenv("FERRY_REPORT_PAGES"); out != "" {
			os.MkdirAll(out, 0o755)
			exec.Command("pdftoppm", "-png", "-r", "60", "-l", "3", pdf, filepath.Join(out, "report-"+lang)).Run()
		}
	}
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestReportJiraCSV: one ticket per host of the wave, formula cells escaped.
func TestReportJiraCSV(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	planID := seedReportEstate(t, ts, admin, 40)
	db := ts.App.DB.Client
	ctx := viewer.TenantContext(viewer.SystemContext(t.Context()), tenantID(t, ts, "default"))
	// The wave with the most hosts (the planner decides how many waves there are).
	w2 := db.Wave.Query().Where(wave.HasPlanWith(plan.ID(planID))).Order(ent.Desc(wave.FieldHostCount)).FirstX(ctx)
	// An owner that is a formula, on a host of that wave (Assignee column).
	m := db.WaveMember.Query().Where(wavemember.HasWaveWith(wave.ID(w2.ID))).WithHost().FirstX(ctx)
	db.Host.UpdateOneID(m.Edges.Host.ID).SetOwner("=cmd|' /C calc'!A0").ExecX(ctx)
	status, _, body := admin.download(fmt.Sprintf("/api/v1/reports/jira.csv?plan=%d&wave=%d", planID, w2.Ordinal))
	if status != 200 {
		t.Fatalf("jira: %d %s", status, body)
	}
	r := csvRows(t, body)
	if r[0][0] != "Summary" || r[0][1] != "Issue Type" || len(r)-1 != w2.HostCount {
		t.Errorf("jira CSV: header %q, %d tickets, wave %d has %d hosts", r[0], len(r)-1, w2.Ordinal, w2.HostCount)
	}
	escaped := 0
	for _, row := range r[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("cell %q would run as a formula", cell)
			}
		}
		if row[7] == "'=cmd|' /C calc'!A0" {
			escaped++
		}
	}
	if escaped != 1 {
		t.Errorf("the formula owner shows escaped in %d tickets, want 1", escaped)
	}
	if s, _, _ := admin.download(fmt.Sprintf("/api/v1/reports/jira.csv?plan=%d&wave=x", planID)); s != 400 {
		t.Errorf("a bad wave: status %d, want 400", s)
	}
	// The export is in the tenant's audit log, with who, what, from where
	// and the request's trace id; the refused one is not.
	evs := db.AuditEvent.Query().Where(auditevent.Action("exportReport")).AllX(ctx)
	if len(evs) != 1 {
		t.Fatalf("%d exportReport audit events, want 1 (the refused download is no export)", len(evs))
	}
	ev := evs[0]
	if ev.Actor != "admin@example.com" || ev.ObjectID != fmt.Sprintf("jira-wave-%d.csv", w2.Ordinal) ||
		fmt.Sprint(ev.Details["wave"]) != fmt.Sprint(w2.Ordinal) || ev.TraceID == "" || ev.SourceIP == "" || ev.Hash == "" {
		t.Errorf("export audit event %+v", ev)
	}
}

// TestReportRoutesAuthorization: every role of the tenant downloads its
// own report; another tenant's plan is not found; no sign-in is 401.
func TestReportRoutesAuthorization(t *testing.T) {
	ts := mustStart(t)
	admin := ts.login(t, "admin@example.com", adminPassword)
	planID := seedReportEstate(t, ts, admin, 20)
	admin.mustGQL(`mutation { createTenant(input: {name: "Other", slug: "other"}, ownerEmail: "o@other.example", ownerPassword: "other-owner-password") { tenant { id } } }`, nil)
	other := ts.login(t, "o@other.example", "other-owner-password")
	for _, role := range []string{"viewer", "operator", "consultant", "admin"} {
		admin.mustGQL(`mutation($in: CreateUserInput!) { createUser(input: $in, password: "report-role-password") { id } }`,
			map[string]any{"in": map[string]any{"email": role + "@rep.example", "role": role}})
		c := ts.login(t, role+"@rep.example", "report-role-password")
		if s, _, b := c.download(fmt.Sprintf("/api/v1/reports/assessment.xlsx?plan=%d", planID)); s != 200 {
			t.Errorf("%s: status %d %s", role, s, b)
		}
	}
	if s, _, _ := other.download(fmt.Sprintf("/api/v1/reports/assessment.xlsx?plan=%d", planID)); s != 404 {
		t.Errorf("another tenant's plan: status %d, want 404", s)
	}
	// Without a plan id the other tenant gets its own (empty) estate, not ours.
	s, _, b := other.download("/api/v1/reports/assessment.xlsx")
	if s != 200 {
		t.Fatalf("other tenant's own report: %d", s)
	}
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if inv, _ := f.GetRows("Inventory"); len(inv) != 1 {
		t.Errorf("the other tenant's workbook lists %d hosts of ours", len(inv)-1)
	}
	if s, _, _ := ts.anon(t).download("/api/v1/reports/assessment.xlsx"); s != 401 {
		t.Errorf("anonymous: status %d, want 401", s)
	}
	if s, _, _ := admin.download("/api/v1/reports/nothing.doc"); s != 404 {
		t.Errorf("unknown report: status %d, want 404", s)
	}
}

func csvRows(t *testing.T, b []byte) [][]string {
	t.Helper()
	r, err := csvReader(b).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	return r
}
