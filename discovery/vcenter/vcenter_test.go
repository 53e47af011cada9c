package vcenter

import (
	"context"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"

	"github.com/ferry-migrate/ferry/discovery"
)

// TestDiscoverAgainstSimulator runs govmomi's vCenter simulator in the
// test and checks every VM it serves comes back with its placement and
// hardware, cross-checked against the simulator's own objects.
func TestDiscoverAgainstSimulator(t *testing.T) {
	model := simulator.VPX()
	defer model.Remove()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	err := model.Run(func(ctx context.Context, c *vim25.Client) error {
		recs, err := Discover(ctx, c, "vcsim", now)
		if err != nil {
			return err
		}
		want := model.Count().Machine
		if len(recs) != want || want == 0 {
			t.Fatalf("discovered %d VMs, the simulator has %d", len(recs), want)
		}
		clustered := 0
		for _, r := range recs {
			if r.Source.Kind != discovery.SourceVCenter || r.Source.Name != "vcsim" || !r.Source.ObservedAt.Equal(now) {
				t.Errorf("%s: source %+v", r.Name, r.Source)
			}
			if discovery.CanonicalUUID(r.BIOSUUID) == "" || r.InstanceUUID == "" || r.CPUs < 1 || r.MemoryMiB < 1 ||
				len(r.Disks) == 0 || r.Disks[0].ProvisionedBytes <= 0 || len(r.MACs) == 0 || r.PowerState != "on" ||
				r.ESXHost == "" || r.Datacenter != "DC0" || len(r.Networks) == 0 || r.Networks[0] == "" || r.OS == "" {
				t.Errorf("incomplete VM record: %+v", r.HostFacts)
			}
			if r.Cluster == "DC0_C0" {
				clustered++
			}
		}
		nets := map[string]bool{}
		for _, r := range recs {
			for _, n := range r.Networks {
				nets[n] = true
			}
		}
		if !nets["VM Network"] && !nets["DC0_DVPG0"] {
			t.Errorf("networks %v: want the simulator's VM Network or DC0_DVPG0", nets)
		}
		if clustered == 0 || clustered == len(recs) {
			t.Errorf("%d of %d VMs in cluster DC0_C0; the VPX model has both clustered and standalone hosts", clustered, len(recs))
		}
		// Cross-check one VM against the simulator's own object.
		obj := model.Map().Get(model.Map().AllReference("VirtualMachine")[0].Reference()).(*simulator.VirtualMachine)
		var got *discovery.Record
		for i := range recs {
			if recs[i].Name == obj.Name {
				got = &recs[i]
			}
		}
		if got == nil {
			t.Fatalf("VM %s not discovered", obj.Name)
		}
		vm := obj.VirtualMachine
		if got.BIOSUUID != vm.Config.Uuid || got.CPUs != int(vm.Config.Hardware.NumCPU) || got.MemoryMiB != int64(vm.Config.Hardware.MemoryMB) {
			t.Errorf("%s: got uuid %s cpus %d mem %d; simulator has %s %d %d", obj.Name, got.BIOSUUID, got.CPUs, got.MemoryMiB,
				vm.Config.Uuid, vm.Config.Hardware.NumCPU, vm.Config.Hardware.MemoryMB)
		}
		host := model.Map().Get(*vm.Runtime.Host).(*simulator.HostSystem)
		if got.ESXHost != host.Name {
			t.Errorf("%s on host %q, simulator says %q", obj.Name, got.ESXHost, host.Name)
		}
		// vCenter records normalise into one host each.
		if n := discovery.Normalise(recs, nil); len(n.Hosts) != len(recs) {
			t.Errorf("%d VMs normalised into %d hosts", len(recs), len(n.Hosts))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConnectAndDiscover(t *testing.T) {
	model := simulator.VPX()
	defer model.Remove()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	srv := model.Service.NewServer()
	defer srv.Close()
	ctx := context.Background()
	u := *srv.URL
	u.User = nil
	c, err := Connect(ctx, u.String(), "user", "pass", true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Logout(ctx)
	recs, err := Discover(ctx, c.Client, u.Host, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("discovered %d VMs; first: %+v", len(recs), recs[0].HostFacts)
	if len(recs) != model.Count().Machine {
		t.Fatalf("discovered %d VMs over the SDK URL, want %d", len(recs), model.Count().Machine)
	}
	if _, err := Connect(ctx, "http://127.0.0.1:1/sdk", "u", "p", true); err == nil {
		t.Fatal("connecting to a closed port must fail")
	}
}
