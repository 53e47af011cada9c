package planning

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/assessment"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/planner/assess"
)

// NewAssessor validates the options (target, region, link) before anything
// is queued; errors are planner.Problems naming the field.
func NewAssessor(opt assess.Options) (*assess.Assessor, error) { return assess.New(opt) }

// Assess assesses every host of the tenant in ctx for opt's target and
// region and upserts one Assessment row per host and target (a re-run
// updates the same rows). It returns the totals of this run.
func Assess(ctx context.Context, c *ent.Client, tenantID int, opt assess.Options) (*assess.Totals, error) {
	if opt.Catalog == nil {
		target := opt.Target
		if target == "" {
			target = "alibaba"
		}
		cat, _, err := LoadCatalog(ctx, c, target)
		if err != nil {
			return nil, err
		}
		opt.Catalog = cat
	}
	a, err := assess.New(opt)
	if err != nil {
		return nil, err
	}
	est, err := LoadEstate(ctx, c, false)
	if err != nil {
		return nil, err
	}
	rep := a.Estate(est)
	// As in writePlan: host ids come from the tenant-scoped read above, so
	// rows are written as the system with the tenant set explicitly.
	sys := viewer.SystemContext(ctx)
	err = withTx(ctx, c, func(tx *ent.Client) error {
		for i := 0; i < len(rep.Results); i += batch / 2 {
			end := min(i+batch/2, len(rep.Results))
			b := make([]*ent.AssessmentCreate, 0, end-i)
			for _, r := range rep.Results[i:end] {
				hid, err := strconv.Atoi(r.HostID)
				if err != nil {
					return fmt.Errorf("assessment of %q: not a host id", r.HostID)
				}
				b = append(b, tx.Assessment.Create().SetTenantID(tenantID).SetHostID(hid).SetTarget(rep.Target).
					SetRegion(rep.Region).SetReadiness(assessment.Readiness(r.Status)).SetReasons(nonNil(r.Reasons)).
					SetActions(nonNil(r.Actions)).SetMissing(nonNil(r.Missing)).SetInstanceType(r.InstanceRightSized).
					SetInstanceTypeAsIs(r.InstanceAsIs).SetNeedVcpus(r.NeedVCPUs).SetNeedMemoryGib(r.NeedMemoryGiB).
					SetMonthlyCostAsIs(r.MonthlyAsIs).SetMonthlyCostRightSized(r.MonthlyRightSized).
					SetStorageMonthly(r.StorageMonthly).SetUsedBytes(r.UsedBytes).
					SetTransferSeconds(int64(math.Round(r.TransferHours*3600))).SetOfflineSeeding(r.OfflineSeeding).
					SetSizingNote(r.SizingNote).SetSeedingNote(r.SeedingNote).SetFindings(r.Findings))
			}
			err := tx.Assessment.CreateBulk(b...).
				OnConflictColumns(assessment.FieldTenantID, assessment.FieldHostID, assessment.FieldTarget).
				UpdateNewValues().Exec(sys)
			if err != nil {
				return fmt.Errorf("write assessments: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &rep.Totals, nil
}

// Summary totals the stored assessments of one target.
type Summary struct {
	Target              string
	Hosts               int
	Ready               int
	ReadyWithActions    int
	NotReady            int
	Unknown             int
	MonthlyAsIs         float64
	MonthlyRightSized   float64
	StorageMonthly      float64
	SavingsPercent      float64
	UsedBytes           int64
	TransferSeconds     int64
	OfflineSeedingHosts int
	OfflineSeedingBytes int64
	// Priced is false for a target without a price list (OpenStack).
	Priced        bool
	Currency      string
	Region        string
	AssessedAt    *time.Time
	PriceSource   string
	PriceDate     string
	PriceImported bool
}

// Summarize adds up the target's assessments with two aggregate queries.
func Summarize(ctx context.Context, c *ent.Client, target string) (*Summary, error) {
	var rows []struct {
		Readiness string  `json:"readiness"`
		Count     int     `json:"count"`
		AsIs      float64 `json:"as_is"`
		Right     float64 `json:"right"`
		Storage   float64 `json:"storage"`
		Used      int64   `json:"used"`
		Transfer  int64   `json:"transfer"`
	}
	err := c.Assessment.Query().Where(assessment.Target(target)).GroupBy(assessment.FieldReadiness).
		Aggregate(ent.As(ent.Count(), "count"), ent.As(ent.Sum(assessment.FieldMonthlyCostAsIs), "as_is"),
			ent.As(ent.Sum(assessment.FieldMonthlyCostRightSized), "right"), ent.As(ent.Sum(assessment.FieldStorageMonthly), "storage"),
			ent.As(ent.Sum(assessment.FieldUsedBytes), "used"), ent.As(ent.Sum(assessment.FieldTransferSeconds), "transfer")).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("assessment totals: %w", err)
	}
	s := &Summary{Target: target}
	for _, r := range rows {
		s.Hosts += r.Count
		switch assessment.Readiness(r.Readiness) {
		case assessment.ReadinessReady:
			s.Ready = r.Count
		case assessment.ReadinessReadyWithActions:
			s.ReadyWithActions = r.Count
		case assessment.ReadinessNotReady:
			s.NotReady = r.Count
		default:
			s.Unknown += r.Count
		}
		s.MonthlyAsIs += r.AsIs
		s.MonthlyRightSized += r.Right
		s.StorageMonthly += r.Storage
		s.UsedBytes += r.Used
		s.TransferSeconds += r.Transfer
	}
	// Grouped rather than filtered: SUM over no rows is NULL, a group simply is absent.
	var seed []struct {
		Offline bool  `json:"offline_seeding"`
		Count   int   `json:"count"`
		Used    int64 `json:"used"`
	}
	err = c.Assessment.Query().Where(assessment.Target(target)).GroupBy(assessment.FieldOfflineSeeding).
		Aggregate(ent.As(ent.Count(), "count"), ent.As(ent.Sum(assessment.FieldUsedBytes), "used")).Scan(ctx, &seed)
	if err != nil {
		return nil, fmt.Errorf("assessment totals: %w", err)
	}
	for _, r := range seed {
		if r.Offline {
			s.OfflineSeedingHosts, s.OfflineSeedingBytes = r.Count, r.Used
		}
	}
	// The region most of the rows were assessed in, and the newest row.
	var regions []struct {
		Region string `json:"region"`
		Count  int    `json:"count"`
	}
	err = c.Assessment.Query().Where(assessment.Target(target)).GroupBy(assessment.FieldRegion).
		Aggregate(ent.As(ent.Count(), "count")).Scan(ctx, &regions)
	if err != nil {
		return nil, fmt.Errorf("assessment regions: %w", err)
	}
	best := 0
	for _, r := range regions {
		if r.Count > best {
			s.Region, best = r.Region, r.Count
		}
	}
	if s.Hosts > 0 {
		last, err := c.Assessment.Query().Where(assessment.Target(target)).Order(ent.Desc(assessment.FieldUpdatedAt)).First(ctx)
		if err != nil {
			return nil, fmt.Errorf("newest assessment: %w", err)
		}
		s.AssessedAt = &last.UpdatedAt
	}
	s.Priced = target == "alibaba"
	if cat, row, err := LoadCatalog(ctx, c, "alibaba"); err != nil {
		return nil, err
	} else if s.Priced {
		s.Currency, s.PriceSource, s.PriceDate, s.PriceImported = cat.Currency, cat.Source, cat.Date, row != nil
	}
	s.MonthlyAsIs = math.Round(s.MonthlyAsIs*100) / 100
	s.MonthlyRightSized = math.Round(s.MonthlyRightSized*100) / 100
	s.StorageMonthly = math.Round(s.StorageMonthly*100) / 100
	if s.MonthlyAsIs > 0 {
		s.SavingsPercent = math.Round((1-s.MonthlyRightSized/s.MonthlyAsIs)*1000) / 10
	}
	return s, nil
}
