// Package vcenter discovers virtual machines agentlessly from VMware
// vCenter or ESXi through govmomi, and turns them into discovery records.
// It reads with a handful of property-collector calls (not one call per
// VM), so a large inventory costs seconds, not minutes.
package vcenter

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ferry-migrate/ferry/discovery"
)

// Connect logs in to a vCenter or ESXi SDK endpoint such as
// https://vc.example.com/sdk. insecure skips TLS verification (lab
// vCenters with self-signed certificates).
func Connect(ctx context.Context, rawURL, user, password string, insecure bool) (*govmomi.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("vcenter url: %w", err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	c, err := govmomi.NewClient(ctx, u, insecure)
	if err != nil {
		return nil, fmt.Errorf("connect to vcenter %s: %w", u.Host, err)
	}
	return c, nil
}

// entity is what the topology walk needs of any managed entity.
type entity struct {
	kind, name string
	parent     *types.ManagedObjectReference
}

// Discover lists every VM (templates excluded) with its placement
// (host, cluster, datacenter), networks, disks and guest facts. source
// names the vCenter in provenance; now stamps the observation.
func Discover(ctx context.Context, c *vim25.Client, source string, now time.Time) ([]discovery.Record, error) {
	m := view.NewManager(c)
	topoKinds := []string{"Datacenter", "Folder", "ClusterComputeResource", "ComputeResource", "HostSystem", "Network", "DistributedVirtualPortgroup"}
	tv, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, topoKinds, true)
	if err != nil {
		return nil, fmt.Errorf("vcenter topology view: %w", err)
	}
	defer tv.Destroy(ctx)
	var ents []mo.ManagedEntity
	if err := tv.Retrieve(ctx, topoKinds, []string{"name", "parent"}, &ents); err != nil {
		return nil, fmt.Errorf("vcenter topology: %w", err)
	}
	topo := make(map[types.ManagedObjectReference]entity, len(ents))
	for _, e := range ents {
		topo[e.Self] = entity{kind: e.Self.Type, name: e.Name, parent: e.Parent}
	}
	// mo.Network declares its own Name, which hides ManagedEntity's when
	// networks load as entities, so they are read on their own.
	var nets []mo.Network
	if err := tv.Retrieve(ctx, []string{"Network"}, []string{"name"}, &nets); err != nil {
		return nil, fmt.Errorf("vcenter networks: %w", err)
	}
	for _, n := range nets {
		e := topo[n.Self]
		e.kind, e.name = n.Self.Type, n.Name
		topo[n.Self] = e
	}

	vv, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, fmt.Errorf("vcenter vm view: %w", err)
	}
	defer vv.Destroy(ctx)
	var vms []mo.VirtualMachine
	props := []string{"name", "config", "guest", "runtime", "summary.storage", "network"}
	if err := vv.Retrieve(ctx, []string{"VirtualMachine"}, props, &vms); err != nil {
		return nil, fmt.Errorf("vcenter vms: %w", err)
	}
	src := discovery.SourceRef{Kind: discovery.SourceVCenter, Name: source, ObservedAt: now.UTC()}
	out := make([]discovery.Record, 0, len(vms))
	for i := range vms {
		vm := &vms[i]
		if vm.Config != nil && vm.Config.Template {
			continue
		}
		out = append(out, discovery.Record{Source: src, HostFacts: facts(vm, topo)})
	}
	return out, nil
}

func facts(vm *mo.VirtualMachine, topo map[types.ManagedObjectReference]entity) discovery.HostFacts {
	f := discovery.HostFacts{Name: vm.Name, Virtualization: "vmware"}
	if cfg := vm.Config; cfg != nil {
		f.BIOSUUID = strings.ToLower(cfg.Uuid)
		f.InstanceUUID = strings.ToLower(cfg.InstanceUuid)
		f.CPUs = int(cfg.Hardware.NumCPU)
		f.MemoryMiB = int64(cfg.Hardware.MemoryMB)
		f.OS = cfg.GuestFullName
		switch cfg.Firmware {
		case string(types.GuestOsDescriptorFirmwareTypeEfi):
			f.BootMode = discovery.BootUEFI
		case string(types.GuestOsDescriptorFirmwareTypeBios):
			f.BootMode = discovery.BootBIOS
		}
		for _, dev := range cfg.Hardware.Device {
			switch d := dev.(type) {
			case *types.VirtualDisk:
				name := fmt.Sprintf("disk-%d", d.Key)
				if info := d.GetVirtualDevice().DeviceInfo; info != nil && info.GetDescription() != nil {
					name = info.GetDescription().Label
				}
				f.Disks = append(f.Disks, discovery.Disk{Name: name, ProvisionedBytes: d.CapacityInBytes})
			case types.BaseVirtualEthernetCard:
				if mac := discovery.CanonicalMAC(d.GetVirtualEthernetCard().MacAddress); mac != "" {
					f.MACs = append(f.MACs, mac)
				}
			}
		}
	}
	if g := vm.Guest; g != nil {
		if g.GuestFullName != "" {
			f.OS = g.GuestFullName // what the running guest reports beats the configured type
		}
		if strings.Contains(g.HostName, ".") {
			f.FQDN = strings.ToLower(g.HostName)
		}
		if g.IpAddress != "" {
			f.IPs = append(f.IPs, g.IpAddress)
		}
		for _, n := range g.Net {
			for _, ip := range n.IpAddress {
				if ip != g.IpAddress {
					f.IPs = append(f.IPs, ip)
				}
			}
		}
		for _, d := range g.Disk {
			f.UsedBytes += d.Capacity - d.FreeSpace
		}
	}
	if f.UsedBytes == 0 && vm.Summary.Storage != nil {
		f.UsedBytes = vm.Summary.Storage.Committed
	}
	f.OSFamily = discovery.OSFamily(f.OS)
	switch vm.Runtime.PowerState {
	case types.VirtualMachinePowerStatePoweredOn:
		f.PowerState = "on"
	case types.VirtualMachinePowerStatePoweredOff:
		f.PowerState = "off"
	case types.VirtualMachinePowerStateSuspended:
		f.PowerState = "suspended"
	}
	if h := vm.Runtime.Host; h != nil {
		f.ESXHost = topo[*h].name
		for p := topo[*h].parent; p != nil; p = topo[*p].parent {
			e, ok := topo[*p]
			if !ok {
				break
			}
			switch e.kind {
			case "ClusterComputeResource":
				f.Cluster = e.name
			case "Datacenter":
				f.Datacenter = e.name
			}
		}
	}
	for _, n := range vm.Network {
		if e, ok := topo[n]; ok && e.name != "" {
			f.Networks = append(f.Networks, e.name)
		}
	}
	return f
}
