package alibaba

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// DefaultLaunchFamilies are the instance families a launch is sized from
// when the Shape names no type: the current general-purpose,
// compute-optimised and memory-optimised x86 families, in the order a tie
// (same vCPUs and memory) is broken.
var DefaultLaunchFamilies = []string{"ecs.g7", "ecs.c7", "ecs.r7"}

// launchShape decides the instance type of a launch once, when its machine
// is first recorded (a resumed launch keeps it):
//
//   - the Shape names a type (the host's assessment for alibaba): that type,
//     after DescribeInstanceTypes confirms ECS offers it;
//   - else the Shape has vCPUs and memory (another cloud's assessment, or
//     the inventory): the smallest type of the account's launch families
//     (DescribeInstanceTypes) with at least that many vCPUs and that much
//     memory;
//   - else (nothing is known of the host): the account's launch_type.
//
// The returned Shape's Basis says which, for the launch's record. Errors:
// ErrUnsupported (a type ECS does not offer, or no type large enough).
func (d *Driver) launchShape(ctx context.Context, s cloud.Shape) (cloud.Shape, error) {
	basis := s.Basis
	if basis == "" {
		basis = "the launch's request"
	}
	switch {
	case s.InstanceType != "":
		ts, err := d.c.InstanceTypes(ctx, "", s.InstanceType)
		if err != nil && !errors.Is(err, cloud.ErrUnsupported) {
			return s, fmt.Errorf("instance type %s (%s): %w", s.InstanceType, basis, err)
		}
		if len(ts) == 0 || !strings.EqualFold(ts[0].ID, s.InstanceType) {
			return s, fmt.Errorf("instance type %s (%s): ECS region %s does not offer it (DescribeInstanceTypes): %w",
				s.InstanceType, basis, d.acct.Region, cloud.ErrUnsupported)
		}
		t := ts[0]
		s.InstanceType = t.ID
		s.VCPUs, s.MemoryMiB = t.VCPUs, int64(math.Round(t.MemoryGiB*1024))
		s.Basis = basis
		return s, nil
	case s.VCPUs > 0 && s.MemoryMiB > 0:
		var all []InstanceType
		for _, f := range d.set.launchFamilies {
			ts, err := d.c.InstanceTypes(ctx, f)
			if err != nil {
				return s, fmt.Errorf("instance types of family %s: %w", f, err)
			}
			all = append(all, ts...)
		}
		t, ok := smallestFit(all, d.set.launchFamilies, s.VCPUs, s.MemoryMiB)
		if !ok {
			return s, fmt.Errorf("no instance type of %s has %d vCPU and %.1f GiB (%s): name one in the account's %s or widen %s: %w",
				strings.Join(d.set.launchFamilies, ", "), s.VCPUs, float64(s.MemoryMiB)/1024, basis, SettingLaunchType, SettingLaunchFamilies, cloud.ErrUnsupported)
		}
		s.Basis = fmt.Sprintf("the smallest of %s with ≥ %d vCPU and ≥ %.1f GiB (DescribeInstanceTypes), sized from %s",
			strings.Join(d.set.launchFamilies, ", "), s.VCPUs, float64(s.MemoryMiB)/1024, basis)
		s.InstanceType, s.VCPUs, s.MemoryMiB = t.ID, t.VCPUs, int64(math.Round(t.MemoryGiB*1024))
		return s, nil
	}
	s.InstanceType = d.set.launchType
	s.Basis = "the account's " + SettingLaunchType + " (nothing is known of the host's size)"
	if !d.set.launchTypeSet {
		s.Basis = "the provider's default launch type (nothing is known of the host's size; the account sets none in " + SettingLaunchType + ")"
	}
	return s, nil
}

// smallestFit is the type with the fewest vCPUs, then the least memory,
// that has at least vcpus and memMiB; a tie goes to the family listed
// first. Only x86 types without GPUs are considered (a migrated x86 guest
// runs on neither ARM nor needs a GPU).
func smallestFit(ts []InstanceType, families []string, vcpus int, memMiB int64) (InstanceType, bool) {
	rank := map[string]int{}
	for i, f := range families {
		rank[strings.ToLower(f)] = i
	}
	var fit []InstanceType
	for _, t := range ts {
		if t.GPUs > 0 || (t.Arch != "" && !strings.EqualFold(t.Arch, "X86")) {
			continue
		}
		if t.VCPUs >= vcpus && t.MemoryGiB*1024 >= float64(memMiB)-0.5 {
			fit = append(fit, t)
		}
	}
	if len(fit) == 0 {
		return InstanceType{}, false
	}
	sort.SliceStable(fit, func(i, j int) bool {
		a, b := fit[i], fit[j]
		if a.VCPUs != b.VCPUs {
			return a.VCPUs < b.VCPUs
		}
		if a.MemoryGiB != b.MemoryGiB {
			return a.MemoryGiB < b.MemoryGiB
		}
		if ra, rb := rank[strings.ToLower(a.Family)], rank[strings.ToLower(b.Family)]; ra != rb {
			return ra < rb
		}
		return a.ID < b.ID
	})
	return fit[0], true
}

// parseFamilies reads the launch_families setting: comma-separated family
// ids, "ecs." optional.
func parseFamilies(v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.HasPrefix(f, "ecs.") {
			f = "ecs." + f
		}
		if !familyRE.MatchString(f) {
			return nil, fmt.Errorf("setting %s: %q is not an instance family (like ecs.g7): %w", SettingLaunchFamilies, f, cloud.ErrInvalid)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("setting %s: no family named: %w", SettingLaunchFamilies, cloud.ErrInvalid)
	}
	return out, nil
}
