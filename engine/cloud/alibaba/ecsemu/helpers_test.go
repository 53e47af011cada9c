package ecsemu_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
)

// TestMain lets the test binary stand in for the programs an instance's
// user data starts: ECSEMU_TEST_SERVE=PORT runs a line server on
// $ECSEMU_BIND_IP:PORT that answers every line with "INSTANCE:line".
func TestMain(m *testing.M) {
	if port := os.Getenv("ECSEMU_TEST_SERVE"); port != "" {
		serveLines(port)
		return
	}
	os.Exit(m.Run())
}

func serveLines(port string) {
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("ECSEMU_BIND_IP"), port))
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println("serving on", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				fmt.Fprintf(c, "%s:%s\n", os.Getenv("ECSEMU_INSTANCE_ID"), sc.Text())
			}
		}()
	}
}

type env struct {
	t   *testing.T
	srv *ecsemu.Server
	url string
	dir string
	now *clock
}

// clock is a test clock that follows real time plus an offset.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func start(t *testing.T, mod func(*ecsemu.Options)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), now: &clock{}}
	opt := ecsemu.Options{Dir: e.dir, Now: e.now.Now, Logf: t.Logf, AdminToken: "admin"}
	if mod != nil {
		mod(&opt)
	}
	srv, err := ecsemu.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	e.srv, e.url = srv, hs.URL
	return e
}

func (e *env) host() string { return strings.TrimPrefix(e.url, "http://") }

// client is the real SDK's ECS client pointed at the emulator.
func (e *env) client(id, secret string) *ecs.Client {
	e.t.Helper()
	c, err := ecs.NewClientWithAccessKey("cn-hangzhou", id, secret)
	if err != nil {
		e.t.Fatal(err)
	}
	c.Domain = e.host()
	return c
}

func (e *env) root() *ecs.Client { return e.client(ecsemu.DefaultKeyID, ecsemu.DefaultKeySecret) }

// code returns the ECS error code of an SDK error ("" for nil).
func code(err error) string {
	if err == nil {
		return ""
	}
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return "client:" + err.Error()
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Errorf("%s: error code %q, want %q (%v)", what, got, want, err)
	}
}

// poll calls f until it reports done or 60 s pass.
func poll(t *testing.T, what string, f func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		done, err := f()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done within 60 s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling the emulator's clock-driven states; bounded by the deadline
	}
}

func (e *env) vpc() (vpcID, vswID string) {
	e.t.Helper()
	req := ecs.CreateDescribeVSwitchesRequest()
	resp, err := e.root().DescribeVSwitches(req)
	if err != nil || len(resp.VSwitches.VSwitch) != 1 {
		e.t.Fatalf("DescribeVSwitches: %+v, %v", resp, err)
	}
	return resp.VSwitches.VSwitch[0].VpcId, resp.VSwitches.VSwitch[0].VSwitchId
}

func (e *env) securityGroup(vpcID string, ports ...string) string {
	e.t.Helper()
	c := e.root()
	req := ecs.CreateCreateSecurityGroupRequest()
	req.VpcId, req.SecurityGroupName = vpcID, "ferry-test"
	resp, err := c.CreateSecurityGroup(req)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range ports {
		a := ecs.CreateAuthorizeSecurityGroupRequest()
		a.SecurityGroupId, a.IpProtocol, a.PortRange, a.SourceCidrIp = resp.SecurityGroupId, "tcp", p, "127.0.0.0/8"
		if _, err := c.AuthorizeSecurityGroup(a); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.SecurityGroupId
}

func (e *env) instanceStatus(c *ecs.Client, id string) string {
	e.t.Helper()
	req := ecs.CreateDescribeInstancesRequest()
	req.InstanceIds = fmt.Sprintf("[%q]", id)
	resp, err := c.DescribeInstances(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Instances.Instance) == 0 {
		return ""
	}
	return resp.Instances.Instance[0].Status
}

// waitInstance polls until the instance is in status and returns the
// statuses it passed through.
func (e *env) waitInstance(c *ecs.Client, id, status string) []string {
	e.t.Helper()
	var seen []string
	poll(e.t, "instance "+id+" "+status, func() (bool, error) {
		st := e.instanceStatus(c, id)
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		return st == status, nil
	})
	return seen
}

func (e *env) diskStatus(id string) string {
	e.t.Helper()
	req := ecs.CreateDescribeDisksRequest()
	req.DiskIds = fmt.Sprintf("[%q]", id)
	resp, err := e.root().DescribeDisks(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.Disks.Disk) == 0 {
		return ""
	}
	return resp.Disks.Disk[0].Status
}

func (e *env) waitDisk(id, status string) []string {
	e.t.Helper()
	var seen []string
	poll(e.t, "disk "+id+" "+status, func() (bool, error) {
		st := e.diskStatus(id)
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		return st == status, nil
	})
	return seen
}

var _ = sdk.Version
var _ = context.Background
