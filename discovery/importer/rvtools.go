package importer

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferry-migrate/ferry/discovery"
)

// RVTools sheets Ferry reads.
const (
	sheetVInfo      = "vinfo"
	sheetVDisk      = "vdisk"
	sheetVPartition = "vpartition"
	sheetVNetwork   = "vnetwork"
)

const mib = 1 << 20

// row is one sheet row with its header, whatever the container (CSV or
// xlsx).
type row struct {
	cols map[string]int
	rec  []string
}

func (r row) has(col string) bool { _, ok := r.cols[strings.ToLower(col)]; return ok }

func (r row) get(col string) string {
	i, ok := r.cols[strings.ToLower(col)]
	if !ok || i >= len(r.rec) {
		return ""
	}
	return strings.TrimSpace(r.rec[i])
}

// first returns the first non-empty cell among alternative column names
// (RVTools renamed columns across versions).
func (r row) first(cols ...string) string {
	for _, c := range cols {
		if v := r.get(c); v != "" {
			return v
		}
	}
	return ""
}

type rvVM struct {
	file      string
	line      int
	src       discovery.SourceRef
	facts     discovery.HostFacts
	uuid      string
	disks     []discovery.Disk
	consumed  int64
	partSeen  bool
	inUse     int64
	provision int64
}

// rvChild is a vDisk, vPartition or vNetwork row waiting for its VM; it
// keeps only the cells Finish reads (a sheet row has dozens).
type rvChild struct {
	sheet, file string
	line        int
	vm, uuid    string
	// vDisk: disk name, capacity; vPartition: consumed; vNetwork: MAC,
	// network and the addresses of each address column.
	a, b string
	ips  [3]string
}

var rvIPColumns = [3]string{"IPv4 Address", "IPv6 Address", "IP Address"}

func newRVChild(sheet, file string, line int, vm, uuid string, r row) rvChild {
	ch := rvChild{sheet: sheet, file: file, line: line, vm: vm, uuid: strings.ToLower(uuid)}
	switch sheet {
	case sheetVDisk:
		ch.a, ch.b = r.first("Disk", "Label"), r.get("Capacity MiB")
	case sheetVPartition:
		ch.a = r.get("Consumed MiB")
	case sheetVNetwork:
		ch.a, ch.b = r.get("Mac Address"), r.get("Network")
		for i, col := range rvIPColumns {
			ch.ips[i] = r.get(col)
		}
	}
	return ch
}

type rvtools struct {
	vms      []*rvVM
	byName   map[string][]*rvVM
	children []rvChild
}

func (im *Importer) rvState() *rvtools {
	if im.rv == nil {
		im.rv = &rvtools{byName: map[string][]*rvVM{}}
	}
	return im.rv
}

// sheetOf names the RVTools sheet a CSV file holds, from its name
// (RVTools writes RVTools_tabvInfo.csv) or else its columns.
func sheetOf(name string, cols map[string]int) string {
	l := strings.ToLower(name)
	for _, s := range []string{sheetVPartition, sheetVNetwork, sheetVDisk, sheetVInfo} {
		if strings.Contains(l, s) {
			return s
		}
	}
	has := func(c string) bool { _, ok := cols[strings.ToLower(c)]; return ok }
	switch {
	case has("Consumed MiB"):
		return sheetVPartition
	case has("Mac Address") || has("Network") && !has("CPUs"):
		return sheetVNetwork
	case has("Capacity MiB") && has("Disk"):
		return sheetVDisk
	case has("Powerstate") || has("CPUs"):
		return sheetVInfo
	}
	return ""
}

func (im *Importer) rvtoolsCSV(file string, r io.Reader, sum *FileSummary) error {
	t, err := openCSV(file, r, im.limits.MaxRows, true)
	if err != nil {
		return err
	}
	sheet := sheetOf(file, t.cols)
	if sheet == "" {
		return fmt.Errorf("%w: an RVTools CSV must be the vInfo, vDisk, vPartition or vNetwork sheet", ErrUnknownFormat)
	}
	src := im.source(discovery.SourceRVTools, file)
	return im.eachRow(file, t, sum, func(rec []string, line int) {
		// rvRow keeps only the cells it needs; the row itself is reused.
		im.rvRow(sheet, file, line, src, row{cols: t.cols, rec: rec}, sum)
	})
}

func (im *Importer) rvtoolsXLSX(file string, r io.Reader, sum *FileSummary) (err error) {
	// A workbook is a zip of XML written by anything; a parser bug on a
	// hostile file must refuse that file, not take the server down.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("unreadable workbook: %v", p)
		}
	}()
	// A zip needs random access; spool the (already capped) stream to a
	// temporary file instead of holding it in memory.
	tmp, err := os.CreateTemp(im.dir, "ferry-import-*.xlsx")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, r); err != nil {
		return err
	}
	size, err := tmp.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	wb, err := openWorkbook(tmp, size, im.limits.MaxBytes*8)
	if err != nil {
		return err
	}
	src := im.source(discovery.SourceRVTools, file)
	found := false
	for _, sh := range wb.sheets {
		sheet := strings.ToLower(sh.name)
		if sheet != sheetVInfo && sheet != sheetVDisk && sheet != sheetVPartition && sheet != sheetVNetwork {
			continue
		}
		found = true
		if err := im.xlsxSheet(wb, sh, sheet, file, src, sum); err != nil {
			return fmt.Errorf("sheet %s: %w", sh.name, err)
		}
	}
	if !found {
		return fmt.Errorf("%w: the workbook has none of the sheets vInfo, vDisk, vPartition, vNetwork", ErrUnknownFormat)
	}
	return nil
}

func (im *Importer) xlsxSheet(wb *workbook, sh wbSheet, sheet, file string, src discovery.SourceRef, sum *FileSummary) error {
	var cols map[string]int
	var header []string
	n := 0
	where := file + "#" + sh.name
	return wb.rows(sh.part, func(line int, rec []string) error {
		if cols == nil {
			cols = map[string]int{}
			for i, h := range rec {
				h = strings.TrimSpace(h)
				if bad := badText(h); bad != "" {
					return fmt.Errorf("header cell %d %s", i+1, bad)
				}
				header = append(header, h)
				if _, dup := cols[strings.ToLower(h)]; !dup {
					cols[strings.ToLower(h)] = i
				}
			}
			if _, ok := cols["vm"]; !ok {
				return fmt.Errorf("header row has no VM column")
			}
			return nil
		}
		empty := true
		for _, c := range rec {
			if strings.TrimSpace(c) != "" {
				empty = false
				break
			}
		}
		if empty {
			return nil // formatted but blank rows at the end of a sheet: not rows
		}
		if n++; n > im.limits.MaxRows {
			return fmt.Errorf("%w: more than %d rows", ErrTooLarge, im.limits.MaxRows)
		}
		sum.Rows++
		if col, bad := badCells(rec); bad != "" {
			name := fmt.Sprintf("column %d", col)
			if col <= len(header) && header[col-1] != "" {
				name = header[col-1]
			}
			sum.Rejected++
			im.rowError(where, line, name, "the cell %s; the row is not imported", bad)
			return nil
		}
		im.rvRow(sheet, where, line, src, row{cols: cols, rec: rec}, sum)
		return nil
	})
}

// rvRow takes one row of any sheet. vInfo rows become VMs at once; the
// other sheets wait for Finish, because their VM may be in a later file.
func (im *Importer) rvRow(sheet, file string, line int, src discovery.SourceRef, r row, sum *FileSummary) {
	rv := im.rvState()
	vm := r.get("VM")
	if vm == "" {
		sum.Rejected++
		im.rowError(file, line, "VM", "the VM column is empty")
		return
	}
	uuid := r.first("VM UUID", "VI SDK UUID")
	if sheet != sheetVInfo {
		rv.children = append(rv.children, newRVChild(sheet, file, line, vm, uuid, r))
		sum.Accepted++
		return
	}
	if strings.EqualFold(r.get("Template"), "true") {
		sum.Skipped++
		return
	}
	var c cells
	v := &rvVM{file: file, line: line, src: src}
	f := &v.facts
	f.Name = vm
	if dns := r.get("DNS Name"); strings.Contains(dns, ".") {
		f.FQDN = strings.ToLower(dns)
	}
	f.Virtualization = "vmware"
	f.CPUs = int(c.int("CPUs", r.get("CPUs"), 0, 4096))
	f.MemoryMiB = c.int("Memory", r.first("Memory", "Memory MiB"), 0, 64<<20)
	v.provision = c.int("Provisioned MiB", r.get("Provisioned MiB"), 0, 1<<50) * mib
	v.inUse = c.int("In Use MiB", r.get("In Use MiB"), 0, 1<<50) * mib
	f.OS = r.first("OS according to the VMware Tools", "OS according to the configuration file")
	f.OSFamily = discovery.OSFamily(f.OS)
	switch strings.ToLower(r.get("Powerstate")) {
	case "poweredon":
		f.PowerState = "on"
	case "poweredoff":
		f.PowerState = "off"
	case "suspended":
		f.PowerState = "suspended"
	case "":
	default:
		c.fail("Powerstate", "%q is not poweredOn, poweredOff or suspended", r.get("Powerstate"))
	}
	switch strings.ToLower(r.get("Firmware")) {
	case "efi":
		f.BootMode = discovery.BootUEFI
	case "bios":
		f.BootMode = discovery.BootBIOS
	}
	if uuid != "" {
		v.uuid = c.uuid(firstCol(r, "VM UUID", "VI SDK UUID"), uuid)
	}
	f.ESXHost, f.Cluster, f.Datacenter = r.get("Host"), r.get("Cluster"), r.get("Datacenter")
	if ip := r.get("Primary IP Address"); ip != "" {
		f.IPs = c.ips("Primary IP Address", []string{ip})
	}
	if len(c.errs) > 0 {
		sum.Rejected++
		for _, e := range c.errs {
			im.rowError(file, line, e.col, "%s", e.reason)
		}
		return
	}
	rv.vms = append(rv.vms, v)
	rv.byName[strings.ToLower(vm)] = append(rv.byName[strings.ToLower(vm)], v)
	sum.Accepted++
}

func firstCol(r row, cols ...string) string {
	for _, c := range cols {
		if r.has(c) {
			return c
		}
	}
	return cols[0]
}

// finish joins the sheets and emits one record per VM. A UUID that more
// than one VM claims is no identity (older exports put the vCenter's own
// "VI SDK UUID" on every row), so it is dropped from all of them.
func (rv *rvtools) finish(im *Importer) {
	owners := map[string][]*rvVM{}
	for _, v := range rv.vms {
		if v.uuid != "" {
			owners[v.uuid] = append(owners[v.uuid], v)
		}
	}
	byUUID := map[string]*rvVM{}
	for u, vs := range owners {
		if len(vs) == 1 {
			byUUID[u] = vs[0]
			continue
		}
		for _, v := range vs {
			im.rowError(v.file, v.line, "VM UUID", "UUID %s is shared by %d VMs; not used to identify this VM", u, len(vs))
			v.uuid = ""
		}
	}
	for _, ch := range rv.children {
		v := byUUID[ch.uuid]
		if v == nil {
			cands := rv.byName[strings.ToLower(ch.vm)]
			if len(cands) == 1 {
				v = cands[0]
			} else if len(cands) > 1 {
				im.rowError(ch.file, ch.line, "VM", "VM name %q is not unique in vInfo and the row has no VM UUID to tell them apart", ch.vm)
				continue
			}
		}
		if v == nil {
			im.rowError(ch.file, ch.line, "VM", "VM %q is not in the vInfo sheet", ch.vm)
			continue
		}
		var c cells
		switch ch.sheet {
		case sheetVDisk:
			capMiB := c.int("Capacity MiB", ch.b, 0, 1<<50)
			if len(c.errs) == 0 {
				v.disks = append(v.disks, discovery.Disk{Name: ch.a, ProvisionedBytes: capMiB * mib})
			}
		case sheetVPartition:
			consumed := c.int("Consumed MiB", ch.a, 0, 1<<50)
			if len(c.errs) == 0 {
				v.consumed += consumed * mib
				v.partSeen = true
			}
		case sheetVNetwork:
			if m := ch.a; m != "" {
				v.facts.MACs = append(v.facts.MACs, c.macs("Mac Address", []string{m})...)
			}
			for i, col := range rvIPColumns {
				for _, ip := range splitList(ch.ips[i], ",; ") {
					v.facts.IPs = append(v.facts.IPs, c.ips(col, []string{ip})...)
				}
			}
			if n := ch.b; n != "" {
				v.facts.Networks = append(v.facts.Networks, n)
			}
		}
		for _, e := range c.errs {
			im.rowError(ch.file, ch.line, e.col, "%s", e.reason)
		}
	}
	for _, v := range rv.vms {
		f := v.facts
		f.IPs = dedupe(f.IPs)
		f.MACs = dedupe(f.MACs)
		f.Networks = dedupe(f.Networks)
		f.BIOSUUID = v.uuid
		f.Disks = v.disks
		if len(f.Disks) == 0 && v.provision > 0 {
			f.Disks = []discovery.Disk{{Name: "Hard disk 1", ProvisionedBytes: v.provision}}
		}
		switch {
		case v.partSeen:
			f.UsedBytes = v.consumed
		default:
			f.UsedBytes = v.inUse
		}
		im.addRecord(discovery.Record{Source: v.src, HostFacts: f})
	}
	im.rv = nil
}

func dedupe(v []string) []string {
	seen := map[string]bool{}
	out := v[:0]
	for _, s := range v {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
