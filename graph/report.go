package graph

import (
	"net/url"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/report"
)

// AssumptionsOf fills the defaults in for what the input leaves out.
func AssumptionsOf(in *model.BusinessCaseAssumptionsInput) report.Assumptions {
	a := report.DefaultAssumptions()
	if in == nil {
		return a
	}
	set := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.ComputePerVCPUMonth, in.ComputePerVcpuMonth)
	set(&a.StoragePerGiBMonth, in.StoragePerGibMonth)
	set(&a.WindowsLicencePerVCPUMonth, in.WindowsLicencePerVcpuMonth)
	set(&a.VirtualisationPerVCPUMonth, in.VirtualisationPerVcpuMonth)
	set(&a.FacilitiesPerServerMonth, in.FacilitiesPerServerMonth)
	set(&a.AdminCostPerYear, in.AdminCostPerYear)
	set(&a.ServersPerAdmin, in.ServersPerAdmin)
	set(&a.CloudLabourShare, in.CloudLabourShare)
	set(&a.MigrationPerServer, in.MigrationPerServer)
	set(&a.IdleCPUPercent, in.IdleCPUPercent)
	set(&a.ZombieCPUPercent, in.ZombieCPUPercent)
	if in.Years != nil {
		a.Years = *in.Years
	}
	return a
}

// checkSourceInput refuses a URL that is not an https/http SDK endpoint
// and a negative schedule.
func checkSourceInput(raw *string, interval *int) error {
	if raw != nil {
		u, err := url.Parse(strings.TrimSpace(*raw))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return ferry.Errorf(ferry.EINVALID, "url: %q is not an http(s) URL such as https://vcenter.example/sdk", *raw)
		}
	}
	if interval != nil && (*interval < 0 || *interval > 60*24*31) {
		return ferry.Errorf(ferry.EINVALID, "intervalMinutes: %d is not between 0 (manual) and 44640 (a month)", *interval)
	}
	return nil
}
