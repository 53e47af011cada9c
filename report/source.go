// Package report writes the consultant's deliverables from a tenant's
// estate, assessment and plan: an XLSX workbook (Summary, Inventory,
// Readiness, Sizing & Cost, Dependencies, Move groups, Waves, Schedule), a
// printable HTML report with charts that headless Chromium renders to PDF,
// the business case, and per-wave Jira issue-import CSV files. Every writer
// reads its rows from a Source one at a time and writes them out at once, so
// memory stays bounded at 20,000 hosts and 200,000 connections. Texts come
// in English or Chinese (i18n catalogs, report.* and the domain codes).
//
// report imports no database: internal/reporting is the ent-backed Source.
package report

import (
	"context"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/i18n"
)

// Summary is the assessment totals of one target.
type Summary struct {
	Target, Region                                    string
	Hosts, Ready, ReadyWithActions, NotReady, Unknown int
	MonthlyAsIs, MonthlyRightSized, StorageMonthly    float64
	SavingsPercent                                    float64
	UsedBytes, TransferSeconds                        int64
	OfflineSeedingHosts                               int
	Priced                                            bool
	Currency, PriceSource, PriceDate                  string
	AssessedAt                                        *time.Time
}

// PlanInfo describes the plan the report covers.
type PlanInfo struct {
	ID                   int
	Name, Status, Target string
	Waves, Hosts, Placed int
	// CrossingShare is the percentage (0..100) of dependency weight crossing waves.
	CrossingShare float64
	Start, End    *time.Time
}

// Meta is what the report is about.
type Meta struct {
	Tenant    string
	Generated time.Time
	Summary   Summary
	Plan      *PlanInfo // nil: no plan yet
	Case      *Case     // nil: no business case
	// InventoryHosts counts every host, assessed or not.
	InventoryHosts int
	Connections    int
}

// HostRow is one host with its assessment and its place in the plan.
type HostRow struct {
	ID                                                   int
	Name, FQDN, OS, Environment, Criticality, Owner, App string
	CPUs                                                 int
	MemoryMiB, DiskProvisioned, DiskUsed                 int64
	IPs                                                  []string
	Connected                                            bool
	CPUP95, MemoryP95                                    *float64

	Assessed                         bool
	Readiness                        string
	Findings                         []i18n.Finding
	NeedVCPUs                        int
	NeedMemoryGiB                    float64
	InstanceAsIs, InstanceRightSized string
	MonthlyAsIs, MonthlyRightSized   float64
	StorageMonthly                   float64
	TransferSeconds                  int64
	OfflineSeeding                   bool
	Wave                             int // ordinal; 0 = not in the plan
	Group, Reason                    string
	// Reasons are Reason as codes (planner.Member.Reasons); empty for plans
	// stored before reasons were codes, which then print Reason.
	Reasons                             []i18n.Finding
	Manual                              bool
	DowntimeMinutes                     float64
	WaveStart, CutoverStart, CutoverEnd *time.Time
}

// ConnRow is one observed dependency.
type ConnRow struct {
	Src, Dst        string
	Port            int
	Protocol, Proc  string
	Count, Bytes    int64
	SrcWave, DstWav int
}

// WaveRow is one wave of the plan.
type WaveRow struct {
	Ordinal                              int
	Pilot                                bool
	Hosts, Groups                        int
	DataBytes, WireBytes                 int64
	ReplicationSeconds                   int64
	Start, End, CutoverStart, CutoverEnd *time.Time
	Status                               string
	MonthlyRightSized                    float64
}

// GroupRow is one move group of the plan.
type GroupRow struct {
	Name  string
	Wave  int
	Hosts int
	Bytes int64
	// Members names the first hosts (at most 20), for reading.
	Members []string
}

// Source feeds the writers. Hosts, Connections and Groups call fn once per
// row in a stable order and stop at fn's first error.
type Source interface {
	Meta(ctx context.Context) (*Meta, error)
	Hosts(ctx context.Context, fn func(*HostRow) error) error
	Connections(ctx context.Context, fn func(*ConnRow) error) error
	Groups(ctx context.Context, fn func(*GroupRow) error) error
	Waves(ctx context.Context) ([]WaveRow, error)
}

// T renders a report.* or domain code in lang.
func T(lang, code string, kv ...any) string { return i18n.M(code, kv...).Text(lang) }

// WaveName is the wave's display name in lang.
func WaveName(lang string, ordinal int, pilot bool) string {
	if ordinal == 0 {
		return ""
	}
	if pilot {
		return T(lang, "plan.wave.pilot", "n", ordinal)
	}
	return T(lang, "plan.wave.name", "n", ordinal)
}

// ReasonText is the host's plan reason in lang: its codes translated and
// joined by "; ", or the stored English reason when it has no codes.
func (h *HostRow) ReasonText(lang string) string {
	if len(h.Reasons) == 0 {
		return h.Reason
	}
	parts := make([]string, len(h.Reasons))
	for i, r := range h.Reasons {
		parts[i] = r.Msg().Text(lang)
	}
	return strings.Join(parts, "; ")
}
