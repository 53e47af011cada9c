package alibaba_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
)

// TestLaunchInstanceType: the type a launch gets, decided once when its
// machine is recorded and asked of ECS with DescribeInstanceTypes (through
// the SDK, against the emulator): the Shape's own type when ECS offers it;
// else the smallest type of the launch families that holds the Shape's
// vCPUs and memory; else, knowing nothing, the account's launch_type. A
// type ECS does not offer (another cloud's "m5.large") or a size no family
// has fails at once, before anything is made.
func TestLaunchInstanceType(t *testing.T) {
	e := newCloud(t, nil)
	ctx := context.Background()
	a := &agent{files: map[string]string{}, dir: t.TempDir()}
	p := e.replicated(t, a, "m7-sda", "m7", sourceDisk(t, 4<<20, "app"))
	before := len(e.emu.Inventory().Instances)

	for i, tt := range []struct {
		shape      cloud.Shape
		want, why  string
		vcpus, mem int
	}{
		{cloud.Shape{InstanceType: "ecs.r7.large", VCPUs: 2, MemoryMiB: 3000, Basis: "assessment 12 for alibaba"}, "ecs.r7.large", "assessment 12 for alibaba", 2, 16384},
		{cloud.Shape{VCPUs: 3, MemoryMiB: 5000, Basis: "assessment 7 for openstack"}, "ecs.c7.xlarge", "the smallest of ecs.g7, ecs.c7, ecs.r7 with ≥ 3 vCPU and ≥ 4.9 GiB (DescribeInstanceTypes), sized from assessment 7 for openstack", 4, 8192},
		{cloud.Shape{VCPUs: 1, MemoryMiB: 512, Basis: "the inventory"}, "ecs.c7.large", "sized from the inventory", 2, 4096},
		{cloud.Shape{VCPUs: 2, MemoryMiB: 10 << 10}, "ecs.r7.large", "≥ 2 vCPU and ≥ 10.0 GiB", 2, 16384},
		{cloud.Shape{}, "ecs.g7.large", "the provider's default launch type", 0, 0},
	} {
		m, err := e.drv.CreateMachine(ctx, cloud.MachineSpec{Token: fmt.Sprintf("m7-test-%d", i), Kind: cloud.LaunchTest, MigrationID: "m7",
			Points: []string{p.ID}, Shape: tt.shape})
		if err != nil {
			t.Fatalf("%+v: %v", tt.shape, err)
		}
		if m.Shape.InstanceType != tt.want || !strings.Contains(m.Shape.Basis, tt.why) {
			t.Errorf("%+v: got %s (%q), want %s (%q)", tt.shape, m.Shape.InstanceType, m.Shape.Basis, tt.want, tt.why)
		}
		if tt.vcpus > 0 && (m.Shape.VCPUs != tt.vcpus || m.Shape.MemoryMiB != int64(tt.mem)) {
			t.Errorf("%+v: the machine's size %d vCPU %d MiB, want the type's %d / %d", tt.shape, m.Shape.VCPUs, m.Shape.MemoryMiB, tt.vcpus, tt.mem)
		}
		// The record keeps it: a resumed launch boots the same type.
		if got, err := e.drv.Machine(ctx, m.ID); err != nil || got.Shape != m.Shape {
			t.Errorf("recorded shape %+v (%v), want %+v", got.Shape, err, m.Shape)
		}
		if err := e.drv.Terminate(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}

	for _, s := range []cloud.Shape{{InstanceType: "m5.large", Basis: "an AWS price list"}, {VCPUs: 200, MemoryMiB: 1 << 20}} {
		_, err := e.drv.CreateMachine(ctx, cloud.MachineSpec{Token: "m7-bad-" + s.InstanceType, Kind: cloud.LaunchTest, MigrationID: "m7",
			Points: []string{p.ID}, Shape: s})
		if !errors.Is(err, cloud.ErrUnsupported) {
			t.Errorf("%+v: %v, want ErrUnsupported", s, err)
		} else {
			t.Logf("%+v: %v", s, err)
		}
	}
	if n := len(e.emu.Inventory().Instances); n != before {
		t.Errorf("the refused launches left %d instances, want %d", n, before)
	}

	// An account's families and launch_type.
	acct := e.account
	acct.Settings = map[string]string{}
	for k, v := range e.account.Settings {
		acct.Settings[k] = v
	}
	acct.Settings[alibaba.SettingLaunchFamilies] = "g6, ecs.c6"
	acct.Settings[alibaba.SettingLaunchType] = "ecs.g6.xlarge"
	d, err := e.provider.Driver(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		shape cloud.Shape
		want  string
	}{{cloud.Shape{VCPUs: 2, MemoryMiB: 8 << 10}, "ecs.g6.large"}, {cloud.Shape{}, "ecs.g6.xlarge"}} {
		m, err := d.CreateMachine(ctx, cloud.MachineSpec{Token: fmt.Sprintf("m7-fam-%d", i), Kind: cloud.LaunchTest, MigrationID: "m7",
			Points: []string{p.ID}, Shape: tt.shape})
		if err != nil {
			t.Fatal(err)
		}
		if m.Shape.InstanceType != tt.want {
			t.Errorf("families g6, c6: %+v got %s (%s), want %s", tt.shape, m.Shape.InstanceType, m.Shape.Basis, tt.want)
		}
		if err := d.Terminate(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	acct.Settings[alibaba.SettingLaunchFamilies] = "g7;rm -rf"
	if _, err := e.provider.Driver(ctx, acct); !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), alibaba.SettingLaunchFamilies) {
		t.Errorf("a bad family list: %v, want ErrInvalid naming the setting", err)
	}
	if err := e.drv.Teardown(ctx, "m7"); err != nil {
		t.Fatal(err)
	}
	waitGone(t, e)
}
