// Package planner owns migration planning as pure code: the weighted
// dependency graph built from observed connections, move groups
// (applications, keep-together sets, dependency cycles), the packing of
// groups into ordered waves under constraints and rules, the schedule of
// those waves, explanations for every placement, and the checking of manual
// edits. It imports no database, transport or queue package: callers hand it
// an Estate, Rules and Constraints and get back a Plan.
package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ferry-migrate/ferry"
)

// The estate types are the shared interchange vocabulary (package ferry);
// the planner names them without the prefix.
type (
	// Estate is the interchange shape shared with discovery and the server
	// (`ferry estate generate` writes it, `ferry plan --estate` reads it).
	Estate = ferry.Estate
	// Host is one source machine of an Estate.
	Host = ferry.EstateHost
	// Disk is one disk of a Host.
	Disk = ferry.EstateDisk
	// Connection is an observed flow from Src to Dst (Src depends on Dst).
	Connection = ferry.EstateConnection
)

// ReadEstate decodes estate JSON. It does not validate; call ValidateEstate.
func ReadEstate(r io.Reader) (*Estate, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read estate: %w", err)
	}
	return DecodeEstate(data)
}

// DecodeEstate decodes estate JSON held in memory. The connections, most
// of the bytes at scale, take a hand-written fast path (see fastDecode);
// anything unusual falls back to encoding/json with identical meaning.
// The slices get their capacity up front (encoding/json appends into
// existing capacity), sparing the growth of a million-element slice.
func DecodeEstate(data []byte) (*Estate, error) {
	e := Estate{
		Hosts:       make([]Host, 0, bytes.Count(data, []byte(`"id"`))),
		Connections: make([]Connection, 0, bytes.Count(data, []byte(`"src"`))),
	}
	if err := fastDecode(data, &e); err == nil {
		return &e, nil
	}
	e = Estate{Hosts: e.Hosts[:0], Connections: e.Connections[:0]}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, describeJSONError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, describeJSONError(data, errTrailing{tokenStart(data, dec.InputOffset())})
	}
	return &e, nil
}

// Problems collects every problem found in an input, so a user fixes them
// all in one go instead of one per run.
type Problems []string

func (p Problems) Error() string {
	const show = 20
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s):", len(p))
	for i, s := range p {
		if i == show {
			fmt.Fprintf(&b, "\n  ... and %d more", len(p)-show)
			break
		}
		b.WriteString("\n  - ")
		b.WriteString(s)
	}
	return b.String()
}

func (p *Problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p Problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

var (
	validEnvironments = map[string]bool{"": true, "production": true, "staging": true, "test": true, "development": true, "dr": true}
	validCriticality  = map[string]bool{"": true, "low": true, "medium": true, "high": true, "critical": true}
	validBootModes    = map[string]bool{"": true, "bios": true, "uefi": true}
)

// ValidateEstate reports every problem in e: missing or duplicate host ids,
// negative sizes, unknown enumerations, connections to unknown hosts. The
// error is a Problems value naming each item.
func ValidateEstate(e *Estate) error {
	var p Problems
	if e == nil {
		return Problems{"estate is empty"}
	}
	seen := make(map[string]int, len(e.Hosts))
	for i := range e.Hosts {
		h := &e.Hosts[i]
		where := fmt.Sprintf("hosts[%d]", i)
		if h.ID == "" {
			p.addf("%s (name %q): id is empty", where, h.Name)
		} else if j, dup := seen[h.ID]; dup {
			p.addf("%s: duplicate host id %q (first at hosts[%d])", where, h.ID, j)
		} else {
			seen[h.ID] = i
		}
		if h.ID != "" {
			where = fmt.Sprintf("host %s", h.ID)
		}
		if h.CPUs < 0 {
			p.addf("%s: cpus is negative (%d)", where, h.CPUs)
		}
		if h.MemoryMiB < 0 {
			p.addf("%s: memory_mib is negative (%d)", where, h.MemoryMiB)
		}
		if h.CPUP95 < 0 || h.CPUP95 > 100 {
			p.addf("%s: cpu_p95 %.1f is not a percentage", where, h.CPUP95)
		}
		if h.MemoryP95 < 0 || h.MemoryP95 > 100 {
			p.addf("%s: memory_p95 %.1f is not a percentage", where, h.MemoryP95)
		}
		if h.PinnedWave < 0 {
			p.addf("%s: pinned_wave is negative (%d)", where, h.PinnedWave)
		}
		if !validEnvironments[h.Environment] {
			p.addf("%s: environment %q is not one of production, staging, test, development, dr", where, h.Environment)
		}
		if !validCriticality[h.Criticality] {
			p.addf("%s: criticality %q is not one of low, medium, high, critical", where, h.Criticality)
		}
		if !validBootModes[h.BootMode] {
			p.addf("%s: boot_mode %q is not bios or uefi", where, h.BootMode)
		}
		for j, d := range h.Disks {
			if d.ProvisionedBytes < 0 {
				p.addf("%s: disks[%d] (%s): provisioned_bytes is negative (%d)", where, j, d.Name, d.ProvisionedBytes)
			}
			if d.UsedBytes < 0 {
				p.addf("%s: disks[%d] (%s): used_bytes is negative (%d)", where, j, d.Name, d.UsedBytes)
			}
			if d.ProvisionedBytes > 0 && d.UsedBytes > d.ProvisionedBytes {
				p.addf("%s: disks[%d] (%s): used_bytes %d exceeds provisioned_bytes %d", where, j, d.Name, d.UsedBytes, d.ProvisionedBytes)
			}
		}
	}
	for i := range e.Connections {
		c := &e.Connections[i]
		_, srcOK := seen[c.Src]
		_, dstOK := seen[c.Dst]
		if srcOK && (dstOK || c.Dst == "" && c.DstAddress != "") && c.Port >= 0 && c.Port <= 65535 && c.Count >= 0 && c.Bytes >= 0 {
			continue // the common case, without formatting its name
		}
		where := fmt.Sprintf("connections[%d] (%s -> %s:%d)", i, c.Src, orStr(c.Dst, c.DstAddress), c.Port)
		if c.Src == "" {
			p.addf("%s: src is empty", where)
		} else if _, ok := seen[c.Src]; !ok {
			p.addf("%s: src %q is not a host id in this estate", where, c.Src)
		}
		if c.Dst == "" && c.DstAddress == "" {
			p.addf("%s: both dst and dst_address are empty", where)
		} else if c.Dst != "" {
			if _, ok := seen[c.Dst]; !ok {
				p.addf("%s: dst %q is not a host id in this estate (use dst_address for external destinations)", where, c.Dst)
			}
		}
		if c.Port < 0 || c.Port > 65535 {
			p.addf("%s: port %d is out of range", where, c.Port)
		}
		if c.Count < 0 {
			p.addf("%s: count is negative (%d)", where, c.Count)
		}
		if c.Bytes < 0 {
			p.addf("%s: bytes is negative (%d)", where, c.Bytes)
		}
	}
	return p.err()
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
