// Package planning translates between the database and the pure planner: it
// loads a tenant's estate from ent in pages, runs planner.Build, CheckMove,
// ApplyMove and planner/assess on it, and writes waves, members and
// assessments back in one transaction. graph (inline runs, manual moves) and
// jobs (queued runs) share it, so neither grows its own translation.
//
// Host ids in the planner are the decimal ent ids, so a member, a violation or
// an unplaced host names a row the API can fetch.
package planning

import (
	"context"
	"fmt"
	"strconv"

	"entgo.io/ent/dialect/sql"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/connection"
	"github.com/ferry-migrate/ferry/ent/disk"
	"github.com/ferry-migrate/ferry/ent/host"
	"github.com/ferry-migrate/ferry/planner"
)

// page is how many rows one query reads. Large enough that 200,000
// connections take 40 queries, small enough to keep SQLite's statement and
// the driver's buffers modest.
const page = 5000

// HostID is the planner's id of an ent host.
func HostID(id int) string { return strconv.Itoa(id) }

// LoadEstate reads the estate of the viewer's tenant (ctx carries it): every
// host with its disks and application, and, when withConnections, every
// observed connection. It reads in id-ordered pages with a constant number
// of queries per page (no query per host).
func LoadEstate(ctx context.Context, c *ent.Client, withConnections bool) (*planner.Estate, error) {
	apps, err := c.Application.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load applications: %w", err)
	}
	appName := make(map[int]string, len(apps))
	for _, a := range apps {
		appName[a.ID] = a.Name
	}
	e := &planner.Estate{}
	index := map[int]int{}
	for last := 0; ; {
		hs, err := c.Host.Query().Where(host.IDGT(last)).Order(ent.Asc(host.FieldID)).Limit(page).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load hosts: %w", err)
		}
		for _, h := range hs {
			index[h.ID] = len(e.Hosts)
			e.Hosts = append(e.Hosts, toHost(h, appName))
		}
		if len(hs) < page {
			break
		}
		last = hs[len(hs)-1].ID
	}
	// Disks: the host foreign key is not an ent field, so select it by column.
	type diskRow struct {
		ID        int    `json:"id"`
		Name      string `json:"name"`
		SizeBytes int64  `json:"size_bytes"`
		UsedBytes int64  `json:"used_bytes"`
		Host      int    `json:"host_disks"`
	}
	hasDisks := make([]bool, len(e.Hosts))
	for last := 0; ; {
		var rows []diskRow
		err := c.Disk.Query().Where(disk.IDGT(last)).Order(ent.Asc(disk.FieldID)).Limit(page).
			Modify(func(s *sql.Selector) {
				s.Select(s.C(disk.FieldID), s.C(disk.FieldName), s.C(disk.FieldSizeBytes), s.C(disk.FieldUsedBytes), s.C(disk.HostColumn))
			}).Scan(ctx, &rows)
		if err != nil {
			return nil, fmt.Errorf("load disks: %w", err)
		}
		for _, d := range rows {
			i, ok := index[d.Host]
			if !ok {
				continue
			}
			if !hasDisks[i] {
				hasDisks[i] = true
				e.Hosts[i].Disks = e.Hosts[i].Disks[:0]
			}
			e.Hosts[i].Disks = append(e.Hosts[i].Disks, planner.Disk{Name: d.Name, ProvisionedBytes: d.SizeBytes, UsedBytes: d.UsedBytes})
		}
		if len(rows) < page {
			break
		}
		last = rows[len(rows)-1].ID
	}
	if !withConnections {
		return e, nil
	}
	for last := 0; ; {
		cs, err := c.Connection.Query().Where(connection.IDGT(last)).Order(ent.Asc(connection.FieldID)).Limit(page).
			Select(connection.FieldID, connection.FieldSrcHostID, connection.FieldDstHostID, connection.FieldDstAddress,
				connection.FieldPort, connection.FieldProtocol, connection.FieldProcess, connection.FieldCount, connection.FieldBytes).
			All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load connections: %w", err)
		}
		if e.Connections == nil {
			e.Connections = make([]planner.Connection, 0, len(cs))
		}
		for _, x := range cs {
			pc := planner.Connection{Src: HostID(x.SrcHostID), DstAddress: x.DstAddress, Port: x.Port,
				Protocol: string(x.Protocol), Process: x.Process, Count: x.Count, Bytes: x.Bytes}
			if x.DstHostID != nil {
				pc.Dst = HostID(*x.DstHostID)
			}
			e.Connections = append(e.Connections, pc)
		}
		if len(cs) < page {
			break
		}
		last = cs[len(cs)-1].ID
	}
	return e, nil
}

// toHost converts a host row. "unknown" enum values are the planner's empty
// string; a host without disk rows keeps its aggregate sizes as one disk.
func toHost(h *ent.Host, appName map[int]string) planner.Host {
	ph := planner.Host{
		ID: HostID(h.ID), Name: h.Name, FQDN: h.Fqdn, Environment: unknownEmpty(string(h.Environment)),
		Criticality: unknownEmpty(string(h.Criticality)), Owner: h.Owner, Tags: h.Tags, OS: h.Os, OSFamily: h.OsFamily,
		Arch: h.Arch, BootMode: unknownEmpty(string(h.BootMode)), CPUs: h.Cpus, MemoryMiB: h.MemoryMib,
		IPs: h.Ips, MACs: h.Macs, BIOSUUID: h.BiosUUID, Virtualization: h.Virtualization, PinnedWave: h.PinnedWave,
	}
	if h.ApplicationID != nil {
		ph.Application = appName[*h.ApplicationID]
	}
	if h.CPUP95 != nil {
		ph.CPUP95 = *h.CPUP95
	}
	if h.MemoryP95 != nil {
		ph.MemoryP95 = *h.MemoryP95
	}
	if h.DiskProvisionedBytes > 0 || h.DiskUsedBytes > 0 {
		ph.Disks = []planner.Disk{{Name: "disks", ProvisionedBytes: h.DiskProvisionedBytes, UsedBytes: h.DiskUsedBytes}}
	}
	return ph
}

func unknownEmpty(s string) string {
	if s == "unknown" {
		return ""
	}
	return s
}
