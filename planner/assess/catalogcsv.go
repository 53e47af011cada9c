package assess

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/planner"
)

// ParseCatalogCSV reads a price list a user downloaded and reshaped into
// CSV, one price per row, with a header naming the columns (any order,
// case-insensitive):
//
//	kind        instance (default) or disk
//	name        instance type, e.g. ecs.g7.large (instance rows)
//	family      e.g. g7; default: the second part of name
//	arch        x86_64 (default) or aarch64
//	uefi        true/false; default: generation 7 or later
//	vcpus       instance rows
//	memory_gib  instance rows
//	region      e.g. cn-hangzhou
//	monthly     price per month, or
//	hourly      price per hour (× 730)
//
// A disk row prices block storage per GiB-month in its region. Bad rows are
// reported together (row and column), as planner.Problems; nothing is
// returned then. date (YYYY-MM-DD) and source describe the list.
func ParseCatalogCSV(r io.Reader, target, source, date, currency string) (*Catalog, error) {
	if _, err := time.Parse("2006-01-02", date); err != nil {
		return nil, planner.Problems{fmt.Sprintf("date: %q is not YYYY-MM-DD (the day the prices were taken)", date)}
	}
	if target == "" {
		target = "alibaba"
	}
	if currency == "" {
		currency = "USD"
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, planner.Problems{fmt.Sprintf("header: %v", err)}
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var p planner.Problems
	for _, need := range []string{"region"} {
		if _, ok := col[need]; !ok {
			p = append(p, fmt.Sprintf("header: no %q column (have %s)", need, strings.Join(head, ", ")))
		}
	}
	_, hasM := col["monthly"]
	_, hasH := col["hourly"]
	if !hasM && !hasH {
		p = append(p, "header: no \"monthly\" or \"hourly\" price column")
	}
	if len(p) > 0 {
		return nil, p
	}
	cat := &Catalog{Target: target, Source: source, Date: date, Currency: currency, DiskGiBMonth: map[string]float64{}}
	fam := map[string]int{}
	types := map[string]map[string]int{} // family → name → index
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p = append(p, fmt.Sprintf("row %d: %v", row, err))
			continue
		}
		get := func(k string) string {
			if i, ok := col[k]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		bad := func(column, format string, a ...any) {
			p = append(p, fmt.Sprintf("row %d, %s: %s", row, column, fmt.Sprintf(format, a...)))
		}
		region := get("region")
		if region == "" {
			bad("region", "empty")
			continue
		}
		price, perr := strconv.ParseFloat(get("monthly"), 64)
		if get("monthly") == "" {
			price, perr = strconv.ParseFloat(get("hourly"), 64)
			price *= 730
		}
		if perr != nil || price < 0 || math.IsNaN(price) || math.IsInf(price, 0) {
			bad("monthly/hourly", "%q is not a price", get("monthly")+get("hourly"))
			continue
		}
		switch kind := strings.ToLower(get("kind")); kind {
		case "disk":
			cat.DiskGiBMonth[region] = price
			continue
		case "", "instance":
		default:
			bad("kind", "%q is not instance or disk", kind)
			continue
		}
		name := get("name")
		if name == "" {
			bad("name", "empty")
			continue
		}
		vcpus, err1 := strconv.Atoi(get("vcpus"))
		mem, err2 := strconv.ParseFloat(get("memory_gib"), 64)
		if err1 != nil || vcpus <= 0 {
			bad("vcpus", "%q is not a positive whole number", get("vcpus"))
			continue
		}
		if err2 != nil || mem <= 0 {
			bad("memory_gib", "%q is not a positive number", get("memory_gib"))
			continue
		}
		family := get("family")
		if family == "" {
			parts := strings.Split(name, ".")
			if len(parts) >= 3 {
				family = parts[1]
			} else {
				family = name
			}
		}
		arch := strings.ToLower(get("arch"))
		if arch == "" {
			arch = "x86_64"
		}
		if arch != "x86_64" && arch != "aarch64" {
			bad("arch", "%q is not x86_64 or aarch64", arch)
			continue
		}
		uefi := generation(family) >= 7
		if u := get("uefi"); u != "" {
			b, err := strconv.ParseBool(u)
			if err != nil {
				bad("uefi", "%q is not true or false", u)
				continue
			}
			uefi = b
		}
		fi, ok := fam[family]
		if !ok {
			fi = len(cat.Families)
			fam[family] = fi
			cat.Families = append(cat.Families, Family{Family: family, Arch: arch, UEFI: uefi})
			types[family] = map[string]int{}
		}
		f := &cat.Families[fi]
		ti, ok := types[family][name]
		if !ok {
			ti = len(f.Types)
			types[family][name] = ti
			f.Types = append(f.Types, instanceType{Name: name, VCPUs: vcpus, MemoryGiB: mem, Monthly: map[string]float64{}})
		}
		f.Types[ti].Monthly[region] = price
	}
	if len(p) == 0 && cat.Types() == 0 {
		p = append(p, "no instance rows: a price list needs at least one instance type")
	}
	for _, r := range cat.instanceRegions() {
		if _, ok := cat.DiskGiBMonth[r]; !ok && len(p) == 0 {
			p = append(p, fmt.Sprintf("region %s: instance prices but no disk row (kind=disk) for storage", r))
		}
	}
	if len(p) > 0 {
		return nil, p
	}
	return cat, nil
}

func (c *Catalog) instanceRegions() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range c.Families {
		for _, t := range f.Types {
			for r := range t.Monthly {
				if !seen[r] {
					seen[r] = true
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func generation(family string) int {
	n := 0
	for _, r := range family {
		if r >= '0' && r <= '9' {
			n = n*10 + int(r-'0')
		}
	}
	return n
}
