package report

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Assumptions of the business case; every one is printed with it.
type Assumptions struct {
	ComputePerVCPUMonth        float64 `json:"computePerVcpuMonth"`
	StoragePerGiBMonth         float64 `json:"storagePerGibMonth"`
	WindowsLicencePerVCPUMonth float64 `json:"windowsLicencePerVcpuMonth"`
	VirtualisationPerVCPUMonth float64 `json:"virtualisationPerVcpuMonth"`
	FacilitiesPerServerMonth   float64 `json:"facilitiesPerServerMonth"`
	AdminCostPerYear           float64 `json:"adminCostPerYear"`
	ServersPerAdmin            float64 `json:"serversPerAdmin"`
	CloudLabourShare           float64 `json:"cloudLabourShare"`
	MigrationPerServer         float64 `json:"migrationPerServer"`
	Years                      int     `json:"years"`
	IdleCPUPercent             float64 `json:"idleCpuPercent"`
	ZombieCPUPercent           float64 `json:"zombieCpuPercent"`
}

// DefaultAssumptions are planning figures in the spirit of Azure Migrate's
// business case defaults (hardware amortised over five years, one
// administrator per hundred servers); a consultant replaces them with the
// client's own and they are printed with the result.
func DefaultAssumptions() Assumptions {
	return Assumptions{
		ComputePerVCPUMonth: 12, StoragePerGiBMonth: 0.08, WindowsLicencePerVCPUMonth: 6, VirtualisationPerVCPUMonth: 4,
		FacilitiesPerServerMonth: 25, AdminCostPerYear: 90000, ServersPerAdmin: 100, CloudLabourShare: 0.6,
		MigrationPerServer: 300, Years: 5, IdleCPUPercent: 10, ZombieCPUPercent: 2,
	}
}

// Validate names every assumption out of range.
func (a Assumptions) Validate() error {
	var bad []string
	for name, v := range map[string]float64{"computePerVcpuMonth": a.ComputePerVCPUMonth, "storagePerGibMonth": a.StoragePerGiBMonth,
		"windowsLicencePerVcpuMonth": a.WindowsLicencePerVCPUMonth, "virtualisationPerVcpuMonth": a.VirtualisationPerVCPUMonth,
		"facilitiesPerServerMonth": a.FacilitiesPerServerMonth, "adminCostPerYear": a.AdminCostPerYear, "migrationPerServer": a.MigrationPerServer,
		"idleCpuPercent": a.IdleCPUPercent, "zombieCpuPercent": a.ZombieCPUPercent} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			bad = append(bad, fmt.Sprintf("%s: %g is negative or not a number", name, v))
		}
	}
	if a.ServersPerAdmin <= 0 {
		bad = append(bad, fmt.Sprintf("serversPerAdmin: %g must be above zero", a.ServersPerAdmin))
	}
	if a.CloudLabourShare < 0 || a.CloudLabourShare > 1 {
		bad = append(bad, fmt.Sprintf("cloudLabourShare: %g is not between 0 and 1", a.CloudLabourShare))
	}
	if a.Years < 1 || a.Years > 10 {
		bad = append(bad, fmt.Sprintf("years: %d is not between 1 and 10", a.Years))
	}
	if a.ZombieCPUPercent > a.IdleCPUPercent {
		bad = append(bad, fmt.Sprintf("zombieCpuPercent: %g is above idleCpuPercent %g", a.ZombieCPUPercent, a.IdleCPUPercent))
	}
	if len(bad) > 0 {
		return fmt.Errorf("assumptions: %s", strings.Join(bad, "; "))
	}
	return nil
}

// Costs is a monthly cost by part.
type Costs struct {
	Compute, Storage, Licences, Facilities, Labour float64
}

// Total adds the parts.
func (c Costs) Total() float64 { return c.Compute + c.Storage + c.Licences + c.Facilities + c.Labour }

func (c Costs) rounded() Costs {
	r := func(x float64) float64 { return math.Round(x*100) / 100 }
	return Costs{r(c.Compute), r(c.Storage), r(c.Licences), r(c.Facilities), r(c.Labour)}
}

// CashFlowYear is one year of the cash flow.
type CashFlowYear struct {
	Year                                         int
	StayOnPremises, OnPremises, Cloud, Migration float64
	Savings, CumulativeSavings                   float64
}

// Case is the business case.
type Case struct {
	Assumptions                             Assumptions
	Hosts, Assessed, Measured, Idle, Zombie int
	OnPremises, CloudAsIs, CloudRightSized  Costs
	CashFlow                                []CashFlowYear
	Start                                   time.Time
	Priced                                  bool
}

// CaseHost is what the business case needs of one host.
type CaseHost struct {
	CPUs           int
	DiskGiB        float64
	Windows        bool
	CPUP95         *float64
	Connected      bool // any observed connection in or out
	Assessed       bool
	NeedVCPUs      int
	MonthlyAsIs    float64
	MonthlyRight   float64
	StorageMonthly float64
	WaveStart      *time.Time // replication begins (cloud cost starts: dual running)
	Cutover        *time.Time // on-premises cost ends
}

// CaseBuilder adds hosts one at a time (bounded memory) and finishes the case.
type CaseBuilder struct {
	c     Case
	years []CashFlowYear
}

// NewCase starts a business case whose cash flow begins at start (the
// plan's first day, or today without a plan).
func NewCase(a Assumptions, start time.Time, priced bool) *CaseBuilder {
	b := &CaseBuilder{c: Case{Assumptions: a, Start: start, Priced: priced}}
	b.years = make([]CashFlowYear, a.Years)
	for i := range b.years {
		b.years[i].Year = i + 1
	}
	return b
}

// months is the part of [from, to) inside year y (0-based) of the case, in months.
func (b *CaseBuilder) months(y int, from, to time.Time) float64 {
	ys, ye := b.c.Start.AddDate(y, 0, 0), b.c.Start.AddDate(y+1, 0, 0)
	if from.Before(ys) {
		from = ys
	}
	if to.After(ye) {
		to = ye
	}
	if !to.After(from) {
		return 0
	}
	return to.Sub(from).Hours() / 24 / (365.25 / 12)
}

// Add counts one host.
func (b *CaseBuilder) Add(h CaseHost) {
	a := b.c.Assumptions
	c := &b.c
	c.Hosts++
	cpus := float64(h.CPUs)
	labour := a.AdminCostPerYear / 12 / a.ServersPerAdmin
	op := Costs{Compute: cpus * a.ComputePerVCPUMonth, Storage: h.DiskGiB * a.StoragePerGiBMonth,
		Licences: cpus * a.VirtualisationPerVCPUMonth, Facilities: a.FacilitiesPerServerMonth, Labour: labour}
	if h.Windows {
		op.Licences += cpus * a.WindowsLicencePerVCPUMonth
	}
	add(&c.OnPremises, op)
	zombie := false
	if h.CPUP95 != nil {
		c.Measured++
		switch {
		case *h.CPUP95 < a.ZombieCPUPercent && !h.Connected:
			c.Zombie++
			zombie = true
		case *h.CPUP95 < a.IdleCPUPercent:
			c.Idle++
		}
	}
	if h.Assessed {
		c.Assessed++
	}
	asIs := Costs{Compute: h.MonthlyAsIs, Storage: h.StorageMonthly, Labour: labour * a.CloudLabourShare}
	if h.Windows {
		asIs.Licences = cpus * a.WindowsLicencePerVCPUMonth
	}
	add(&c.CloudAsIs, asIs)
	right := Costs{}
	if !zombie {
		right = Costs{Compute: h.MonthlyRight, Storage: h.StorageMonthly, Labour: labour * a.CloudLabourShare}
		if h.Windows {
			right.Licences = float64(max(h.NeedVCPUs, 1)) * a.WindowsLicencePerVCPUMonth
		}
	}
	add(&c.CloudRightSized, right)
	// Cash flow: on premises until cutover, in the cloud from the start of
	// replication (both run meanwhile); a zombie is retired at its cutover.
	start, cut := c.Start, c.Start
	if h.WaveStart != nil {
		start = *h.WaveStart
	}
	if h.Cutover != nil {
		cut = *h.Cutover
	}
	if cut.Before(start) {
		cut = start
	}
	far := c.Start.AddDate(len(b.years)+1, 0, 0)
	for y := range b.years {
		yr := &b.years[y]
		yr.StayOnPremises += 12 * op.Total()
		yr.OnPremises += b.months(y, c.Start, cut) * op.Total()
		if !zombie {
			yr.Cloud += b.months(y, start, far) * right.Total()
		}
		if !cut.Before(c.Start.AddDate(y, 0, 0)) && cut.Before(c.Start.AddDate(y+1, 0, 0)) && !zombie {
			yr.Migration += a.MigrationPerServer
		}
	}
}

func add(t *Costs, c Costs) {
	t.Compute += c.Compute
	t.Storage += c.Storage
	t.Licences += c.Licences
	t.Facilities += c.Facilities
	t.Labour += c.Labour
}

// Finish returns the case with rounded figures.
func (b *CaseBuilder) Finish() *Case {
	c := b.c
	c.OnPremises, c.CloudAsIs, c.CloudRightSized = c.OnPremises.rounded(), c.CloudAsIs.rounded(), c.CloudRightSized.rounded()
	r := func(x float64) float64 { return math.Round(x) }
	cum := 0.0
	for _, y := range b.years {
		y.StayOnPremises, y.OnPremises, y.Cloud, y.Migration = r(y.StayOnPremises), r(y.OnPremises), r(y.Cloud), r(y.Migration)
		y.Savings = y.StayOnPremises - (y.OnPremises + y.Cloud + y.Migration)
		cum += y.Savings
		y.CumulativeSavings = cum
		c.CashFlow = append(c.CashFlow, y)
	}
	return &c
}
