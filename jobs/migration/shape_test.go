package migration

import (
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// namedDriver is a driver under another cloud's name.
type namedDriver struct {
	cloud.Driver
	name string
}

func (d namedDriver) Name() string { return d.name }

// TestLaunchShapeNamesOnlyTheCloudsOwnType: a launch asks for the
// instance type of the host's assessment for its own cloud; another
// cloud's assessment gives only vCPUs and memory (its type must never reach
// this cloud), and so does the inventory when there is no assessment.
func TestLaunchShapeNamesOnlyTheCloudsOwnType(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := e.sys
	r := &run{l: e.l, drv: namedDriver{e.drv, "alibaba"}}
	h := e.host

	got, err := r.launchShape(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if got.InstanceType != "" || got.VCPUs != 2 || got.MemoryMiB != 1024 || !strings.Contains(got.Basis, "inventory") {
		t.Errorf("no assessment: %+v, want the inventory's 2 vCPU / 1024 MiB and no type", got)
	}

	foreign := e.c.Assessment.Create().SetTenantID(e.tenant.ID).SetHostID(h.ID).SetTarget("openstack").SetRegion("RegionOne").
		SetInstanceType("m5.large").SetNeedVcpus(3).SetNeedMemoryGib(5.5).SaveX(e.sys)
	if got, err = r.launchShape(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got.InstanceType != "" || got.VCPUs != 3 || got.MemoryMiB != 5632 || !strings.Contains(got.Basis, "openstack") {
		t.Errorf("only another cloud's assessment (%d): %+v, want 3 vCPU / 5632 MiB and no type", foreign.ID, got)
	}

	own := e.c.Assessment.Create().SetTenantID(e.tenant.ID).SetHostID(h.ID).SetTarget("alibaba").SetRegion("cn-hangzhou").
		SetInstanceType("ecs.c7.xlarge").SetNeedVcpus(4).SetNeedMemoryGib(6).SaveX(e.sys)
	// The other cloud's row is newer: the own cloud's still wins.
	e.c.Assessment.UpdateOneID(foreign.ID).SetNeedVcpus(5).ExecX(e.sys)
	if got, err = r.launchShape(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got.InstanceType != own.InstanceType || got.VCPUs != 4 || !strings.Contains(got.Basis, "assessment") || !strings.Contains(got.Basis, "ecs.c7.xlarge") {
		t.Errorf("an assessment for alibaba (%d): %+v, want its type %s", own.ID, got, own.InstanceType)
	}

	// The local cloud gets no ECS type from it either.
	r.drv = e.drv
	if got, err = r.launchShape(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got.InstanceType != "" || got.VCPUs == 0 {
		t.Errorf("the local cloud: %+v, want a size without a type", got)
	}
}
