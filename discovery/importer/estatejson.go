package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry/discovery"
)

// estateHostIn is an EstateHost as read: pointers tell "absent" from 0.
type estateHostIn struct {
	ID             string                 `json:"id"`
	Name           string                 `json:"name"`
	FQDN           string                 `json:"fqdn"`
	Application    string                 `json:"application"`
	Environment    string                 `json:"environment"`
	Criticality    string                 `json:"criticality"`
	Owner          string                 `json:"owner"`
	Tags           []string               `json:"tags"`
	OS             string                 `json:"os"`
	OSFamily       string                 `json:"os_family"`
	Arch           string                 `json:"arch"`
	BootMode       string                 `json:"boot_mode"`
	CPUs           *int64                 `json:"cpus"`
	MemoryMiB      *int64                 `json:"memory_mib"`
	CPUP95         *float64               `json:"cpu_p95"`
	MemoryP95      *float64               `json:"memory_p95"`
	IPs            []string               `json:"ips"`
	MACs           []string               `json:"macs"`
	BIOSUUID       string                 `json:"bios_uuid"`
	Virtualization string                 `json:"virtualization"`
	PinnedWave     *int64                 `json:"pinned_wave"`
	Disks          []discovery.EstateDisk `json:"disks"`
}

type pendingEstateConn struct {
	line int
	c    discovery.EstateConnection
}

// estateJSON streams {"hosts":[...],"connections":[...]} one element at a
// time, so a large estate never sits in memory as a whole document. Row
// numbers are 1-based positions in the hosts or connections array.
func (im *Importer) estateJSON(file string, r io.Reader, sum *FileSummary) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return fmt.Errorf("want a JSON object with hosts and connections: %w", err)
	}
	src := im.source(discovery.SourceEstate, file)
	ids := map[string]bool{}
	var conns []pendingEstateConn
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxErr(err)
		}
		key, _ := tok.(string)
		switch key {
		case "hosts", "connections":
			if err := expectDelim(dec, '['); err != nil {
				return fmt.Errorf("%s: want an array: %w", key, err)
			}
			for n := 1; dec.More(); n++ {
				sum.Rows++
				if sum.Rows > im.limits.MaxRows {
					return fmt.Errorf("%w: more than %d rows", ErrTooLarge, im.limits.MaxRows)
				}
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return syntaxErr(err)
				}
				if field, bad := badJSONText(raw); bad != "" {
					sum.Rejected++
					im.rowError(file, n, key+"."+field, "the value %s; the element is not imported", bad)
					continue
				}
				if key == "hosts" {
					var h estateHostIn
					if err := json.Unmarshal(raw, &h); err != nil {
						if !isTypeErr(err) {
							return syntaxErr(err)
						}
						sum.Rejected++
						im.rowError(file, n, "hosts."+typeErrField(err), "%v", typeErrReason(err))
						continue
					}
					if rec, ok := im.estateHost(file, n, src, h); ok {
						ids[h.ID] = true
						im.addRecord(rec)
						sum.Accepted++
					} else {
						sum.Rejected++
					}
				} else {
					var c discovery.EstateConnection
					if err := json.Unmarshal(raw, &c); err != nil {
						if !isTypeErr(err) {
							return syntaxErr(err)
						}
						sum.Rejected++
						im.rowError(file, n, "connections."+typeErrField(err), "%v", typeErrReason(err))
						continue
					}
					conns = append(conns, pendingEstateConn{n, c})
				}
			}
			if _, err := dec.Token(); err != nil {
				return syntaxErr(err)
			}
		default:
			if err := skipValue(dec); err != nil {
				return syntaxErr(err)
			}
		}
	}
	// Connections are checked once every host id is known, whatever the
	// order of the two arrays.
	for _, p := range conns {
		var c cells
		if !ids[p.c.Src] {
			c.fail("connections.src", "%q is not the id of a host in this file", p.c.Src)
		}
		if p.c.Dst != "" && !ids[p.c.Dst] {
			c.fail("connections.dst", "%q is not the id of a host in this file", p.c.Dst)
		}
		if p.c.Dst == "" && p.c.DstAddress == "" {
			c.fail("connections.dst_address", "a connection leaving the estate needs dst_address")
		}
		if p.c.Port < 0 || p.c.Port > 65535 {
			c.fail("connections.port", "%d is not a port", p.c.Port)
		}
		proto := c.enum("connections.protocol", p.c.Protocol, protocols)
		if proto == "" {
			proto = "tcp"
		}
		if p.c.Count < 0 || p.c.Bytes < 0 {
			c.fail("connections.count", "count and bytes cannot be negative")
		}
		if len(c.errs) > 0 {
			sum.Rejected++
			for _, e := range c.errs {
				im.rowError(file, p.line, e.col, "%s", e.reason)
			}
			continue
		}
		oc := discovery.ObservedConnection{Source: src, Src: discovery.Endpoint{Ref: im.estateRef(p.c.Src)}, Port: p.c.Port,
			Protocol: proto, Process: p.c.Process, Count: p.c.Count, Bytes: p.c.Bytes}
		if p.c.Dst != "" {
			oc.Dst.Ref = im.estateRef(p.c.Dst)
		} else {
			oc.Dst.Address = p.c.DstAddress
		}
		im.addConnection(oc)
		sum.Accepted++
	}
	return nil
}

// badJSONText finds a value of one array element that is not clean text:
// bytes that are not UTF-8 (encoding/json would silently turn them into
// U+FFFD) or a \u0000 escape. It names the element's top-level key.
func badJSONText(raw json.RawMessage) (string, string) {
	if utf8.Valid(raw) && !bytes.Contains(raw, []byte(`\u0000`)) {
		return "", ""
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		fields = map[string]json.RawMessage{"": raw}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		v := fields[k]
		if !utf8.Valid(v) || !utf8.ValidString(k) {
			return k, "is not valid UTF-8 text"
		}
		if bytes.Contains(v, []byte(`\u0000`)) {
			return k, "holds a NUL character"
		}
	}
	return "", "is not valid UTF-8 text"
}

func (im *Importer) estateRef(id string) string { return "estate:" + im.batch + ":" + id }

func (im *Importer) estateHost(file string, n int, src discovery.SourceRef, h estateHostIn) (discovery.Record, bool) {
	var c cells
	if h.ID == "" {
		c.fail("hosts.id", "a host needs an id")
	}
	if h.Name == "" {
		c.fail("hosts.name", "a host needs a name")
	}
	f := discovery.HostFacts{Name: h.Name, FQDN: h.FQDN, Application: h.Application, Owner: h.Owner, Tags: h.Tags,
		OS: h.OS, Arch: h.Arch, Virtualization: h.Virtualization, CPUP95: h.CPUP95, MemoryP95: h.MemoryP95}
	f.Environment = c.enum("hosts.environment", h.Environment, environments)
	f.Criticality = c.enum("hosts.criticality", h.Criticality, criticalities)
	f.BootMode = c.enum("hosts.boot_mode", h.BootMode, bootModes)
	f.OSFamily = c.enum("hosts.os_family", h.OSFamily, osFamilies)
	f.IPs = c.ips("hosts.ips", h.IPs)
	f.MACs = c.macs("hosts.macs", h.MACs)
	f.BIOSUUID = c.uuid("hosts.bios_uuid", h.BIOSUUID)
	if h.CPUs != nil {
		f.CPUs = int(c.int("hosts.cpus", strconv.FormatInt(*h.CPUs, 10), 0, 4096))
	}
	if h.MemoryMiB != nil {
		f.MemoryMiB = c.int("hosts.memory_mib", strconv.FormatInt(*h.MemoryMiB, 10), 0, 64<<20)
	}
	if h.PinnedWave != nil {
		f.PinnedWave = int(c.int("hosts.pinned_wave", strconv.FormatInt(*h.PinnedWave, 10), 0, 10000))
	}
	for _, p := range []struct {
		col string
		v   *float64
	}{{"hosts.cpu_p95", h.CPUP95}, {"hosts.memory_p95", h.MemoryP95}} {
		if p.v != nil && (*p.v < 0 || *p.v > 100) {
			c.fail(p.col, "%v is outside 0..100", *p.v)
		}
	}
	for i, d := range h.Disks {
		if d.ProvisionedBytes < 0 || d.UsedBytes < 0 || d.UsedBytes > d.ProvisionedBytes {
			c.fail(fmt.Sprintf("hosts.disks[%d]", i), "used bytes must be between 0 and provisioned bytes")
		}
		f.Disks = append(f.Disks, discovery.Disk{Name: d.Name, ProvisionedBytes: d.ProvisionedBytes, UsedBytes: d.UsedBytes})
	}
	if len(c.errs) > 0 {
		for _, e := range c.errs {
			im.rowError(file, n, e.col, "%s", e.reason)
		}
		return discovery.Record{}, false
	}
	return discovery.Record{Source: src, Refs: []string{im.estateRef(h.ID)}, HostFacts: f}, true
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(err)
	}
	if tok != d {
		return fmt.Errorf("found %v where %q was expected", tok, string(d))
	}
	return nil
}

func isTypeErr(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

func typeErrField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

func typeErrReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a JSON %s cannot be a %s", te.Value, te.Type)
	}
	return err.Error()
}

// syntaxErr keeps ErrTooLarge visible and names the byte offset of bad JSON.
func syntaxErr(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the JSON document ends early")
	}
	return err
}

// skipValue reads past one JSON value token by token, so an unknown key
// with a huge value is never held in memory.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
