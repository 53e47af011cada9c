package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/discovery"
)

// hostIdentity is what an agent says about who its host is instead of what
// the machine reports. The control plane merges records into hosts by BIOS
// UUID, MAC, host name and IP (discovery.Normalise): cloned VMs that kept
// their hostname (and whose UUID the agent cannot read without root) merge
// into one host by name, and several agents on one staging machine, each
// standing for a powered-off disk image (--disk-source), merge by every key.
// A host name of its own, and for the second case no hardware ids, keep
// them apart.
type hostIdentity struct {
	// Hostname replaces the machine's host name; the FQDN goes with it
	// (it names the machine, and a name is an identity key), unless the
	// override is itself a dotted name.
	Hostname string
	// NoHardwareIDs drops the machine id, the BIOS UUID and the NICs' MAC
	// addresses, so that the host is known by its name (and its agent)
	// alone. The IPs stay: an IP never merges two differently named hosts.
	NoHardwareIDs bool
}

// addFlags declares --hostname and --no-hardware-ids on cmd.
func (h *hostIdentity) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&h.Hostname, "hostname", os.Getenv("FERRY_AGENT_HOSTNAME"),
		"report this host name instead of the machine's (cloned VMs that share a hostname); default $FERRY_AGENT_HOSTNAME")
	cmd.Flags().BoolVar(&h.NoHardwareIDs, "no-hardware-ids", false,
		"report no machine id, BIOS UUID or MAC addresses, so the host is known by its name alone (several agents on one machine, each with its own --hostname and --disk-source)")
}

func (h hostIdentity) validate() error {
	if h.Hostname != strings.TrimSpace(h.Hostname) || strings.ContainsAny(h.Hostname, " \t\r\n/") || len(h.Hostname) > 253 {
		return fmt.Errorf("--hostname %q: want a host name (no spaces or slashes, at most 253 characters)", h.Hostname)
	}
	if h.NoHardwareIDs && h.Hostname == "" {
		return fmt.Errorf("--no-hardware-ids needs --hostname: without hardware ids the name is what tells this host from the machine's others")
	}
	return nil
}

func (h hostIdentity) inventory(inv *discovery.Inventory) {
	if h.Hostname != "" {
		inv.Hostname, inv.FQDN = h.Hostname, ""
		if strings.Contains(h.Hostname, ".") {
			inv.FQDN = h.Hostname
		}
	}
	if h.NoHardwareIDs {
		inv.MachineID, inv.BIOSUUID = "", ""
		nics := make([]discovery.NIC, len(inv.NICs))
		for i, n := range inv.NICs {
			n.MAC = ""
			nics[i] = n
		}
		inv.NICs = nics
	}
}

// wrap applies the identity to every inventory inv collects.
func (h hostIdentity) wrap(inv func(context.Context) (discovery.Inventory, error)) func(context.Context) (discovery.Inventory, error) {
	if h == (hostIdentity{}) {
		return inv
	}
	return func(ctx context.Context) (discovery.Inventory, error) {
		i, err := inv(ctx)
		if err == nil {
			h.inventory(&i)
		}
		return i, err
	}
}
