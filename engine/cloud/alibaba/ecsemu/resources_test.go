package ecsemu_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/google/go-cmp/cmp"
)

const debian = "debian_12_6_x64_20G_alibase_20240819.vhd"

// script is user data that runs the test binary's line server on port.
func script(t *testing.T, port int) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("#!/bin/sh\necho devices: $(ls $ECSEMU_DEVICE_ROOT/dev)\nECSEMU_TEST_SERVE=%d exec %q\n", port, exe)
	return base64.StdEncoding.EncodeToString([]byte(s))
}

func (e *env) run(c *ecs.Client, vswID, sg, userData, token string) string {
	e.t.Helper()
	req := ecs.CreateRunInstancesRequest()
	req.ImageId, req.InstanceType, req.VSwitchId, req.SecurityGroupId = debian, "ecs.g7.large", vswID, sg
	req.InstanceName, req.UserData, req.ClientToken = "ferry-gateway", userData, token
	req.Tag = &[]ecs.RunInstancesTag{{Key: "ferry:migration", Value: "m-1"}}
	resp, err := c.RunInstances(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.InstanceIdSets.InstanceIdSet) != 1 {
		e.t.Fatalf("RunInstances: %+v", resp)
	}
	return resp.InstanceIdSets.InstanceIdSet[0]
}

func dial(t *testing.T, addr, line string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, line)
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(s), err
}

func TestInstanceLifecycleWithItsDisksAndIngress(t *testing.T) {
	e := start(t, nil)
	c := e.root()
	vpcID, vswID := e.vpc()
	sg := e.securityGroup(vpcID, "8443/8443")
	id := e.run(c, vswID, sg, script(t, 8443), "")
	seen := e.waitInstance(c, id, "Running")
	if diff := cmp.Diff([]string{"Pending", "Starting", "Running"}, seen); diff != "" {
		t.Errorf("instance states (-want +got):\n%s", diff)
	}
	d := ecs.CreateDescribeInstancesRequest()
	d.InstanceIds = fmt.Sprintf("[%q]", id)
	resp, err := c.DescribeInstances(d)
	if err != nil {
		t.Fatal(err)
	}
	in := resp.Instances.Instance[0]
	ip := in.VpcAttributes.PrivateIpAddress.IpAddress
	if len(ip) != 1 || !strings.HasPrefix(ip[0], "127.16.") || in.VpcAttributes.VpcId != vpcID || in.VpcAttributes.VSwitchId != vswID ||
		in.InstanceType != "ecs.g7.large" || in.Cpu != 2 || in.Memory != 8192 || len(in.Tags.Tag) != 1 || in.Tags.Tag[0].TagValue != "m-1" ||
		!slices.Equal(in.SecurityGroupIds.SecurityGroupId, []string{sg}) {
		t.Fatalf("DescribeInstances answered %+v", in)
	}
	// The security group's port is served on the private address and
	// reaches the user data's server; other ports are closed.
	var got string
	poll(t, "the instance's service", func() (bool, error) {
		got, err = dial(t, ip[0]+":8443", "hello")
		return err == nil, nil
	})
	if got != id+":hello" {
		t.Errorf("through the security group: %q", got)
	}
	if _, err := dial(t, ip[0]+":22", "x"); err == nil {
		t.Error("a port the security group does not admit answered")
	}

	// A data disk: Creating → Available, attached → In_use, seen by the
	// instance as dev/vdb.
	cd := ecs.CreateCreateDiskRequest()
	cd.ZoneId, cd.Size, cd.DiskCategory, cd.DiskName = "cn-hangzhou-h", requests.NewInteger(20), "cloud_essd", "web-1-sda"
	disk, err := c.CreateDisk(cd)
	if err != nil {
		t.Fatal(err)
	}
	if seen := e.waitDisk(disk.DiskId, "Available"); seen[0] != "Creating" {
		t.Errorf("disk states %v: want Creating first", seen)
	}
	ad := ecs.CreateAttachDiskRequest()
	ad.DiskId, ad.InstanceId = disk.DiskId, id
	if _, err := c.AttachDisk(ad); err != nil {
		t.Fatal(err)
	}
	if seen := e.waitDisk(disk.DiskId, "In_use"); seen[0] != "Attaching" {
		t.Errorf("attach states %v: want Attaching first", seen)
	}
	_, err = c.AttachDisk(ad)
	wantCode(t, "attaching an attached disk", err, "IncorrectDiskStatus")
	dev := filepath.Join(e.dir, "instances", id, "root", "dev", "vdb")
	target, err := os.Readlink(dev)
	if want, _ := e.srv.DiskPath(disk.DiskId); err != nil || target != want {
		t.Errorf("the attached disk in the instance: %s → %q, %v; want %s", dev, target, err, want)
	}
	if byID, err := os.Readlink(filepath.Join(e.dir, "instances", id, "root", "dev", "disk", "by-id", "virtio-"+strings.TrimPrefix(disk.DiskId, "d-"))); err != nil || byID != target {
		t.Errorf("the disk by its serial: %q, %v", byID, err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Size() != 20<<30 {
		t.Errorf("the disk file: %v, %v; want a 20 GiB sparse file", fi, err)
	}

	_, err = c.DeleteInstance(func() *ecs.DeleteInstanceRequest {
		r := ecs.CreateDeleteInstanceRequest()
		r.InstanceId = id
		return r
	}())
	wantCode(t, "deleting a running instance", err, "IncorrectInstanceStatus")
	stop := ecs.CreateStopInstanceRequest()
	stop.InstanceId = id
	if _, err := c.StopInstance(stop); err != nil {
		t.Fatal(err)
	}
	if seen := e.waitInstance(c, id, "Stopped"); seen[0] != "Stopping" {
		t.Errorf("stop states %v", seen)
	}
	_, err = c.StopInstance(stop)
	wantCode(t, "stopping a stopped instance", err, "IncorrectInstanceStatus")
	if _, err := dial(t, ip[0]+":8443", "x"); err == nil {
		t.Error("a stopped instance still answers")
	}
	startReq := ecs.CreateStartInstanceRequest()
	startReq.InstanceId = id
	if _, err := c.StartInstance(startReq); err != nil {
		t.Fatal(err)
	}
	e.waitInstance(c, id, "Running")
	poll(t, "the service after a restart", func() (bool, error) {
		got, err = dial(t, ip[0]+":8443", "again")
		return err == nil, nil
	})
	cons := ecs.CreateGetInstanceConsoleOutputRequest()
	cons.InstanceId = id
	out, err := c.GetInstanceConsoleOutput(cons)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := base64.StdEncoding.DecodeString(out.ConsoleOutput)
	if !strings.Contains(string(text), "devices: disk vda vdb") || !strings.Contains(string(text), "serving on") {
		t.Errorf("console output %q: want the script's lines (its devices and its server)", text)
	}

	del := ecs.CreateDeleteInstanceRequest()
	del.InstanceId, del.Force = id, requests.NewBoolean(true)
	if _, err := c.DeleteInstance(del); err != nil {
		t.Fatal(err)
	}
	if st := e.instanceStatus(c, id); st != "" {
		t.Errorf("a deleted instance is still listed as %s", st)
	}
	// The system disk went with it; the data disk is Available again.
	if st := e.diskStatus(disk.DiskId); st != "Available" {
		t.Errorf("the data disk after its instance was deleted: %q", st)
	}
	poll(t, "the instance's process to end", func() (bool, error) { return e.srv.Inventory().Processes == 0, nil })
	dd := ecs.CreateDeleteDiskRequest()
	dd.DiskId = disk.DiskId
	if _, err := c.DeleteDisk(dd); err != nil {
		t.Fatal(err)
	}
	dsg := ecs.CreateDeleteSecurityGroupRequest()
	dsg.SecurityGroupId = sg
	if _, err := c.DeleteSecurityGroup(dsg); err != nil {
		t.Fatal(err)
	}
	if inv := e.srv.Inventory(); !inv.Empty() {
		t.Errorf("left behind: %v", inv)
	}
}

// attachedDisk makes a disk attached to a (scriptless) instance, so that
// snapshots of it are allowed, and returns the disk, its file and the
// instance.
func (e *env) attachedDisk(c *ecs.Client, sizeGiB int) (string, string, string) {
	e.t.Helper()
	vpcID, vswID := e.vpc()
	id := e.run(c, vswID, e.securityGroup(vpcID), "", "")
	e.waitInstance(c, id, "Running")
	cd := ecs.CreateCreateDiskRequest()
	cd.ZoneId, cd.Size = "cn-hangzhou-h", requests.NewInteger(sizeGiB)
	disk, err := c.CreateDisk(cd)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitDisk(disk.DiskId, "Available")
	ad := ecs.CreateAttachDiskRequest()
	ad.DiskId, ad.InstanceId = disk.DiskId, id
	if _, err := c.AttachDisk(ad); err != nil {
		e.t.Fatal(err)
	}
	e.waitDisk(disk.DiskId, "In_use")
	path, _ := e.srv.DiskPath(disk.DiskId)
	return disk.DiskId, path, id
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) snapshot(c *ecs.Client, diskID string) (string, []string) {
	e.t.Helper()
	cs := ecs.CreateCreateSnapshotRequest()
	cs.DiskId, cs.SnapshotName = diskID, "ferry-pass"
	sn, err := c.CreateSnapshot(cs)
	if err != nil {
		e.t.Fatal(err)
	}
	var progress []string
	poll(e.t, "snapshot "+sn.SnapshotId, func() (bool, error) {
		r := ecs.CreateDescribeSnapshotsRequest()
		r.SnapshotIds = fmt.Sprintf("[%q]", sn.SnapshotId)
		resp, err := c.DescribeSnapshots(r)
		if err != nil || len(resp.Snapshots.Snapshot) != 1 {
			return false, fmt.Errorf("%+v, %v", resp, err)
		}
		s := resp.Snapshots.Snapshot[0]
		if len(progress) == 0 || progress[len(progress)-1] != s.Progress {
			progress = append(progress, s.Progress)
		}
		return s.Status == "accomplished", nil
	})
	return sn.SnapshotId, progress
}

func TestSnapshotsAreCopiesOnWriteAndDisksComeBackFromThem(t *testing.T) {
	e := start(t, nil)
	c := e.root()
	// A disk never attached cannot be snapshotted, as on ECS.
	cd := ecs.CreateCreateDiskRequest()
	cd.ZoneId, cd.Size = "cn-hangzhou-h", requests.NewInteger(20)
	fresh, err := c.CreateDisk(cd)
	if err != nil {
		t.Fatal(err)
	}
	e.waitDisk(fresh.DiskId, "Available")
	cs := ecs.CreateCreateSnapshotRequest()
	cs.DiskId = fresh.DiskId
	_, err = c.CreateSnapshot(cs)
	wantCode(t, "a snapshot of a disk never attached", err, "IncorrectDiskStatus.NeverAttached")

	diskID, path, _ := e.attachedDisk(c, 20)
	first := bytes.Repeat([]byte("first pass "), 100000)
	writeAt(t, path, 5<<30, first)
	s1, progress := e.snapshot(c, diskID)
	if progress[0] == "100%" || progress[len(progress)-1] != "100%" {
		t.Errorf("snapshot progress %v: want it to climb to 100%%", progress)
	}
	writeAt(t, path, 5<<30, bytes.Repeat([]byte("SECOND-PASS"), 100000))
	s2, _ := e.snapshot(c, diskID)

	// A disk from the first snapshot holds the first pass, not what the
	// disk was written with afterwards.
	cd2 := ecs.CreateCreateDiskRequest()
	cd2.ZoneId, cd2.SnapshotId = "cn-hangzhou-h", s1
	restored, err := c.CreateDisk(cd2)
	if err != nil {
		t.Fatal(err)
	}
	e.waitDisk(restored.DiskId, "Available")
	rpath, _ := e.srv.DiskPath(restored.DiskId)
	if got := readAt(t, rpath, 5<<30, len(first)); !bytes.Equal(got, first) {
		t.Error("the disk made from the first snapshot does not hold the first pass")
	}
	sp, _ := e.srv.SnapshotPath(s1)
	if fi, err := os.Stat(sp); err != nil || fi.Size() != 20<<30 {
		t.Errorf("snapshot file %v, %v", fi, err)
	}
	// Sparse: the copy took about what was written, not 20 GiB.
	if du := allocated(t, sp); du > 8<<20 {
		t.Errorf("the snapshot of 1 MB of data allocates %d bytes", du)
	}

	ds := ecs.CreateDeleteSnapshotRequest()
	ds.SnapshotId = s1
	_, err = c.DeleteSnapshot(ds)
	wantCode(t, "deleting a snapshot a disk was made from", err, "SnapshotCreatedDisk")
	ds.Force = requests.NewBoolean(true)
	if _, err := c.DeleteSnapshot(ds); err != nil {
		t.Fatal(err)
	}
	// An image of the second snapshot protects it.
	ci := ecs.CreateCreateImageRequest()
	ci.SnapshotId, ci.ImageName, ci.Platform = s2, "ferry-web-1", "Debian"
	img, err := c.CreateImage(ci)
	if err != nil {
		t.Fatal(err)
	}
	di := ecs.CreateDescribeImagesRequest()
	di.ImageId = img.ImageId
	if r, err := c.DescribeImages(di); err != nil || len(r.Images.Image) != 0 {
		t.Errorf("DescribeImages without Status lists a Creating image: %+v, %v", r, err)
	}
	di.Status = "Creating,Available"
	poll(t, "image "+img.ImageId, func() (bool, error) {
		r, err := c.DescribeImages(di)
		if err != nil || len(r.Images.Image) != 1 {
			return false, fmt.Errorf("%+v, %v", r, err)
		}
		im := r.Images.Image[0]
		if im.DiskDeviceMappings.DiskDeviceMapping[0].SnapshotId != s2 || im.ImageOwnerAlias != "self" {
			return false, fmt.Errorf("image %+v", im)
		}
		return im.Status == "Available", nil
	})
	ds.SnapshotId = s2
	_, err = c.DeleteSnapshot(ds)
	wantCode(t, "deleting a snapshot an image was made from", err, "SnapshotCreatedImage")
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return statBlocks(fi) * 512
}

func TestPaging(t *testing.T) {
	e := start(t, func(o *ecsemu.Options) { o.Timing = &ecsemu.Timing{} })
	c := e.root()
	var made []string
	for i := range 23 {
		cd := ecs.CreateCreateDiskRequest()
		cd.ZoneId, cd.Size, cd.DiskName = "cn-hangzhou-h", requests.NewInteger(20), fmt.Sprintf("disk-%02d", i)
		d, err := c.CreateDisk(cd)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, d.DiskId)
	}
	// Without paging parameters ECS answers the first 10.
	resp, err := c.DescribeDisks(ecs.CreateDescribeDisksRequest())
	if err != nil || len(resp.Disks.Disk) != 10 || resp.TotalCount != 23 || resp.PageSize != 10 || resp.PageNumber != 1 {
		t.Fatalf("first page: %d disks, total %d, %v", len(resp.Disks.Disk), resp.TotalCount, err)
	}
	if resp.Disks.Disk[0].DiskId != made[22] {
		t.Errorf("the first disk listed is %s, want the newest %s", resp.Disks.Disk[0].DiskId, made[22])
	}
	var byNumber []string
	for n := 1; ; n++ {
		r := ecs.CreateDescribeDisksRequest()
		r.PageNumber, r.PageSize = requests.NewInteger(n), requests.NewInteger(7)
		resp, err := c.DescribeDisks(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range resp.Disks.Disk {
			byNumber = append(byNumber, d.DiskId)
		}
		if len(resp.Disks.Disk) < 7 {
			break
		}
	}
	// NextToken pages stay put when a disk is created between pages.
	var byToken []string
	token := ""
	for i := 0; ; i++ {
		r := ecs.CreateDescribeDisksRequest()
		r.MaxResults, r.NextToken = requests.NewInteger(5), token
		resp, err := c.DescribeDisks(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range resp.Disks.Disk {
			byToken = append(byToken, d.DiskId)
		}
		if i == 1 {
			cd := ecs.CreateCreateDiskRequest()
			cd.ZoneId, cd.Size = "cn-hangzhou-h", requests.NewInteger(20)
			if _, err := c.CreateDisk(cd); err != nil {
				t.Fatal(err)
			}
		}
		if token = resp.NextToken; token == "" {
			break
		}
	}
	want := slices.Clone(made)
	slices.Reverse(want)
	if diff := cmp.Diff(want, byNumber); diff != "" {
		t.Errorf("PageNumber paging (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, byToken); diff != "" {
		t.Errorf("NextToken paging with a disk created mid-way (-want +got):\n%s", diff)
	}
	r := ecs.CreateDescribeDisksRequest()
	r.PageSize = requests.NewInteger(101)
	_, err = c.DescribeDisks(r)
	wantCode(t, "a page of 101", err, "InvalidPageSize.ValueNotSupported")
	r = ecs.CreateDescribeDisksRequest()
	r.NextToken = "garbage"
	_, err = c.DescribeDisks(r)
	wantCode(t, "a made-up NextToken", err, "InvalidParameter.NextToken")
}

func TestClientTokenAndDryRun(t *testing.T) {
	e := start(t, nil)
	c := e.root()
	vpcID, vswID := e.vpc()
	sg := e.securityGroup(vpcID)
	a := e.run(c, vswID, sg, "", "prepare-m-1-gateway")
	b := e.run(c, vswID, sg, "", "prepare-m-1-gateway")
	if a != b {
		t.Errorf("RunInstances twice with one ClientToken made %s and %s", a, b)
	}
	req := ecs.CreateRunInstancesRequest()
	req.ImageId, req.InstanceType, req.VSwitchId, req.SecurityGroupId = debian, "ecs.g7.xlarge", vswID, sg
	req.ClientToken = "prepare-m-1-gateway"
	_, err := c.RunInstances(req)
	wantCode(t, "the token again with another instance type", err, "IdempotentParameterMismatch")
	req.ClientToken, req.DryRun = "", "true"
	_, err = c.RunInstances(req)
	wantCode(t, "a valid RunInstances with DryRun", err, "DryRunOperation")
	req.InstanceType = "ecs.nothing.large"
	_, err = c.RunInstances(req)
	wantCode(t, "an unknown type with DryRun", err, "InvalidInstanceType.ValueNotSupported")
	// For real: another cloud's type is refused as ECS refuses it, and
	// DescribeInstanceTypes does not list it.
	real := ecs.CreateRunInstancesRequest()
	real.ImageId, real.InstanceType, real.VSwitchId, real.SecurityGroupId = debian, "m5.large", vswID, sg
	_, err = c.RunInstances(real)
	wantCode(t, "another cloud's type", err, "InvalidInstanceType.ValueNotSupported")
	types := ecs.CreateDescribeInstanceTypesRequest()
	types.InstanceTypes = &[]string{"m5.large", "ecs.c7.xlarge"}
	tr, err := c.DescribeInstanceTypes(types)
	if err != nil || len(tr.InstanceTypes.InstanceType) != 1 || tr.InstanceTypes.InstanceType[0].InstanceTypeId != "ecs.c7.xlarge" ||
		tr.InstanceTypes.InstanceType[0].CpuCoreCount != 4 || tr.InstanceTypes.InstanceType[0].MemorySize != 8 {
		t.Errorf("DescribeInstanceTypes of m5.large and ecs.c7.xlarge: %+v, %v; want ecs.c7.xlarge (4 vCPU, 8 GiB) only", tr, err)
	}
	if n := len(e.srv.Inventory().Instances); n != 1 {
		t.Errorf("%d instances; want the one the token named", n)
	}
}

func TestFaults(t *testing.T) {
	e := start(t, nil)
	c := e.root()
	diskID, _, instID := e.attachedDisk(c, 20)
	inject := func(f ecsemu.Fault) {
		if err := e.srv.Inject(f); err != nil {
			t.Fatal(err)
		}
	}
	cs := ecs.CreateCreateSnapshotRequest()
	cs.DiskId = diskID
	describe := func() error { _, err := c.DescribeDisks(ecs.CreateDescribeDisksRequest()); return err }
	for _, f := range []struct {
		code, action string
		call, then   func() error // the faulted call, and one that must pass afterwards
	}{
		{"InvalidAccessKeyId.NotFound", "DescribeInstances", func() error { _, err := c.DescribeInstances(ecs.CreateDescribeInstancesRequest()); return err }, nil},
		{"Throttling.User", "DescribeDisks", describe, nil},
		{"ServiceUnavailable", "DescribeDisks", describe, nil},
		{"QuotaExceed.Snapshot", "CreateSnapshot", func() error { _, err := c.CreateSnapshot(cs); return err }, describe},
		{"OperationConflict", "CreateDisk", func() error {
			r := ecs.CreateCreateDiskRequest()
			r.ZoneId, r.Size = "cn-hangzhou-h", requests.NewInteger(20)
			_, err := c.CreateDisk(r)
			return err
		}, nil},
		{"IncorrectInstanceStatus", "StopInstance", func() error {
			r := ecs.CreateStopInstanceRequest()
			r.InstanceId = instID
			_, err := c.StopInstance(r)
			return err
		}, describe},
	} {
		inject(ecsemu.Fault{Action: f.action, Code: f.code})
		wantCode(t, "injected "+f.code, f.call(), f.code)
		then := f.then
		if then == nil {
			then = f.call
		}
		if err := then(); err != nil {
			t.Errorf("%s after the injected fault: %v (want it to apply once)", f.action, err)
		}
	}
	if n := len(e.srv.Inventory().Snapshots); n != 0 {
		t.Errorf("%d snapshots after a refused CreateSnapshot", n)
	}

	// A call that times out after it ran: the client gives up, retries with
	// the same ClientToken and gets the disk the first call made.
	inject(ecsemu.Fault{Action: "CreateDisk", Code: "Timeout", Execute: true})
	cd := ecs.CreateCreateDiskRequest()
	cd.ZoneId, cd.Size, cd.ClientToken = "cn-hangzhou-h", requests.NewInteger(20), "prepare-m-1-disk-sda"
	cd.SetReadTimeout(300 * time.Millisecond)
	_, err := c.CreateDisk(cd)
	if err == nil || !strings.Contains(err.Error(), "imeout") {
		t.Fatalf("CreateDisk under a Timeout fault: %v", err)
	}
	before := len(e.srv.Inventory().Disks)
	again, err := c.CreateDisk(cd)
	if err != nil {
		t.Fatal(err)
	}
	if after := len(e.srv.Inventory().Disks); after != before {
		t.Errorf("the retry with the token made another disk (%d → %d)", before, after)
	}
	if st := e.diskStatus(again.DiskId); st == "" {
		t.Errorf("the retry answered disk %s, which does not exist", again.DiskId)
	}
	// The real quota, too.
	e2 := start(t, func(o *ecsemu.Options) { o.Quota.Snapshots = 1 })
	c2 := e2.root()
	d2, _, _ := e2.attachedDisk(c2, 20)
	e2.snapshot(c2, d2)
	cs2 := ecs.CreateCreateSnapshotRequest() // a fresh request: the SDK keeps a used one's endpoint
	cs2.DiskId = d2
	_, err = c2.CreateSnapshot(cs2)
	wantCode(t, "a snapshot past the quota", err, "QuotaExceed.Snapshot")
}

func TestStateSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *env {
		e := start(t, func(o *ecsemu.Options) { o.Dir = dir })
		e.dir = dir
		return e
	}
	e := open()
	c := e.root()
	vpcID, vswID := e.vpc()
	sg := e.securityGroup(vpcID, "9000/9000")
	id := e.run(c, vswID, sg, script(t, 9000), "")
	e.waitInstance(c, id, "Running")
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := open()
	c2 := e2.root()
	if v2, _ := e2.vpc(); v2 != vpcID {
		t.Errorf("the default VPC changed across a restart: %s → %s", vpcID, v2)
	}
	e2.waitInstance(c2, id, "Running")
	d := ecs.CreateDescribeInstancesRequest()
	d.InstanceIds = fmt.Sprintf("[%q]", id)
	resp, err := c2.DescribeInstances(d)
	if err != nil {
		t.Fatal(err)
	}
	ip := resp.Instances.Instance[0].VpcAttributes.PrivateIpAddress.IpAddress[0]
	poll(t, "the instance's service after the emulator restarted", func() (bool, error) {
		_, err := dial(t, ip+":9000", "x")
		return err == nil, nil
	})
}
