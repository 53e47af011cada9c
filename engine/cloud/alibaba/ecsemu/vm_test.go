package ecsemu_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
)

// sparseWrite copies src into the disk file at dst, skipping zero MiBs (as
// the replication data path does).
func sparseWrite(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(buf)) {
		n, err := io.ReadFull(in, buf)
		if n > 0 && string(buf[:n]) != string(zero[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
		}
		if err != nil {
			return
		}
	}
}

// TestCustomImageBootsUnderQemu is the launch path's cloud half: the test
// image's bytes on a disk, a snapshot, an image of it, RunInstances; the
// instance boots under qemu, its console reaches the login prompt and its
// web server answers on the private address through the security group.
func TestCustomImageBootsUnderQemu(t *testing.T) {
	img := vmtest.Image(t, vmtest.Base)
	cache := strings.TrimSuffix(img, ".img") + ".accel.json"
	e := start(t, func(o *ecsemu.Options) {
		o.VM = ecsemu.VMOptions{Probe: vmtest.Probe(t), AccelCache: cache}
	})
	c := e.root()
	diskID, path, helper := e.attachedDisk(c, 20)
	sparseWrite(t, img, path)
	snap, _ := e.snapshot(c, diskID)
	ci := ecs.CreateCreateImageRequest()
	ci.SnapshotId, ci.ImageName, ci.Platform, ci.BootMode = snap, "ferry-test-image", "Debian", "BIOS"
	im, err := c.CreateImage(ci)
	if err != nil {
		t.Fatal(err)
	}
	di := ecs.CreateDescribeImagesRequest()
	di.ImageId, di.Status = im.ImageId, "Creating,Available"
	poll(t, "image", func() (bool, error) {
		r, err := c.DescribeImages(di)
		return err == nil && len(r.Images.Image) == 1 && r.Images.Image[0].Status == "Available", err
	})
	vpcID, vswID := e.vpc()
	sg := e.securityGroup(vpcID, "80/80")
	run := ecs.CreateRunInstancesRequest()
	run.ImageId, run.InstanceType, run.VSwitchId, run.SecurityGroupId = im.ImageId, "ecs.g7.large", vswID, sg
	run.ClientToken = "launch-test-1"
	resp, err := c.RunInstances(run)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.InstanceIdSets.InstanceIdSet[0]
	e.waitInstance(c, id, "Running")
	d := ecs.CreateDescribeInstancesRequest()
	d.InstanceIds = fmt.Sprintf("[%q]", id)
	desc, err := c.DescribeInstances(d)
	if err != nil {
		t.Fatal(err)
	}
	ip := desc.Instances.Instance[0].VpcAttributes.PrivateIpAddress.IpAddress[0]
	cons := ecs.CreateGetInstanceConsoleOutputRequest()
	cons.InstanceId = id
	deadline := time.Now().Add(4 * time.Minute)
	var console string
	for {
		out, err := c.GetInstanceConsoleOutput(cons)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := base64.StdEncoding.DecodeString(out.ConsoleOutput)
		console = string(b)
		if strings.Contains(console, "login:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login prompt within 4 minutes; console tail:\n%s", tail(console, 3000))
		}
		time.Sleep(time.Second) // a TCG boot takes 15–60 s; bounded by the deadline
	}
	var body string
	poll(t, "the image's web server through the security group", func() (bool, error) {
		r, err := http.Get("http://" + ip + "/")
		if err != nil {
			return false, nil
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		body = string(b)
		return true, nil
	})
	if !strings.HasPrefix(body, "ferry test image ") {
		t.Errorf("GET / on %s: %q", ip, body)
	}
	for _, inst := range []string{id, helper} {
		del := ecs.CreateDeleteInstanceRequest()
		del.InstanceId, del.Force = inst, requests.NewBoolean(true)
		if _, err := c.DeleteInstance(del); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "the VM to be gone", func() (bool, error) { inv := e.srv.Inventory(); return inv.VMs == 0 && inv.Processes == 0, nil })
	if pids := vmtest.QemuProcesses(e.dir); len(pids) > 0 {
		t.Errorf("qemu processes left: %v", pids)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
