package alibaba_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
)

type fixture struct {
	t     *testing.T
	emu   *ecsemu.Server
	host  string
	mu    sync.Mutex
	calls []cloud.APICall
	waits []time.Duration
	now   *offsetClock
}

type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *offsetClock) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newFixture(t *testing.T, mod func(*ecsemu.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, now: &offsetClock{}}
	opt := ecsemu.Options{Dir: t.TempDir(), Now: f.now.Now, Logf: func(string, ...any) {},
		Timing: &ecsemu.Timing{InstancePending: 20 * time.Millisecond, InstanceStarting: 20 * time.Millisecond,
			InstanceStopping: 20 * time.Millisecond, DiskCreating: 20 * time.Millisecond, DiskAttaching: 20 * time.Millisecond,
			DiskDetaching: 20 * time.Millisecond, Snapshot: 100 * time.Millisecond, Image: 50 * time.Millisecond}}
	if mod != nil {
		mod(&opt)
	}
	emu, err := ecsemu.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(emu)
	t.Cleanup(func() { hs.Close(); emu.Close() })
	f.emu, f.host = emu, strings.TrimPrefix(hs.URL, "http://")
	return f
}

func (f *fixture) client(cr alibaba.Credentials) *alibaba.Client {
	f.t.Helper()
	if cr.AccessKeyID == "" {
		cr.AccessKeyID, cr.AccessKeySecret = ecsemu.DefaultKeyID, ecsemu.DefaultKeySecret
	}
	c, err := alibaba.New(alibaba.Config{Region: "cn-hangzhou", Endpoint: f.host, Scheme: "http", Credentials: cr,
		Timeout: 2 * time.Second, Poll: 10 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			f.waits = append(f.waits, d)
			f.mu.Unlock()
			t := time.NewTimer(min(d, 20*time.Millisecond)) // the backoff is recorded, not waited out
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// ctx logs every call into f.calls.
func (f *fixture) ctx() context.Context {
	return cloud.WithCallLog(context.Background(), func(c cloud.APICall) {
		f.mu.Lock()
		f.calls = append(f.calls, c)
		f.mu.Unlock()
	})
}

func (f *fixture) logged(action string) []cloud.APICall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.APICall
	for _, c := range f.calls {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

func (f *fixture) reset() {
	f.mu.Lock()
	f.calls, f.waits = nil, nil
	f.mu.Unlock()
}

func (f *fixture) inject(fl ecsemu.Fault) {
	f.t.Helper()
	if err := f.emu.Inject(fl); err != nil {
		f.t.Fatal(err)
	}
}

const zone = "cn-hangzhou-h"

// gateway makes a running instance (of a public image) to attach disks to.
func (f *fixture) gateway(c *alibaba.Client, token string) (alibaba.Instance, string) {
	f.t.Helper()
	ctx := f.ctx()
	sw, vpc := f.defaultVSwitch(c)
	sg, err := c.CreateSecurityGroup(ctx, alibaba.SecurityGroupSpec{Token: token + "-sg", Name: "ferry-gw", VpcID: vpc})
	if err != nil {
		f.t.Fatal(err)
	}
	id, err := c.RunInstance(ctx, alibaba.InstanceSpec{Token: token, Name: "ferry-gw", ImageID: "debian_12_6_x64_20G_alibase_20240819.vhd",
		Type: "ecs.g7.large", VSwitchID: sw, SecurityGroups: []string{sg}, Tags: map[string]string{"ferry:migration": "m-1"}})
	if err != nil {
		f.t.Fatal(err)
	}
	in, err := c.WaitInstance(ctx, id, "Running")
	if err != nil {
		f.t.Fatal(err)
	}
	return in, sg
}

func (f *fixture) defaultVSwitch(c *alibaba.Client) (string, string) {
	f.t.Helper()
	list, err := c.VSwitches(f.ctx(), "")
	if err != nil || len(list) != 1 {
		f.t.Fatalf("VSwitches: %v, %v", list, err)
	}
	v, err := c.VSwitch(f.ctx(), list[0].ID)
	if err != nil || v != list[0] {
		f.t.Fatalf("VSwitch %s: %+v, %v", list[0].ID, v, err)
	}
	return v.ID, v.VpcID
}

func TestEveryCallIsLoggedWithItsRequestID(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(alibaba.Credentials{})
	ctx := f.ctx()
	in, _ := f.gateway(c, "m-1-gateway")
	id, err := c.CreateDisk(ctx, alibaba.DiskSpec{Token: "m-1-disk-sda", Name: "web-1-sda", ZoneID: zone, SizeGiB: 20,
		Tags: map[string]string{"ferry:migration": "m-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitDisk(ctx, id, "Available"); err != nil {
		t.Fatal(err)
	}
	if d, err := c.AttachDisk(ctx, id, in.ID); err != nil || d.Status != "In_use" || d.InstanceID != in.ID {
		t.Fatalf("AttachDisk: %+v, %v", d, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) < 8 {
		t.Fatalf("only %d calls logged", len(f.calls))
	}
	for _, call := range f.calls {
		if call.RequestID == "" || call.Provider != "alibaba" || call.Attempt != 1 || call.Code != "" {
			t.Errorf("logged %+v: want a RequestId, one attempt, no error", call)
		}
	}
	created := false
	for _, call := range f.calls {
		if call.Action == "CreateDisk" && call.Result == id && strings.Contains(call.String(), "request "+call.RequestID) {
			created = true
		}
	}
	if !created {
		t.Errorf("no log line for CreateDisk → %s", id)
	}
}

func TestThrottlingAndUnavailableAreRetriedWithBackoff(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(alibaba.Credentials{})
	f.inject(ecsemu.Fault{Action: "DescribeRegions", Code: "Throttling.User", Times: 2})
	f.inject(ecsemu.Fault{Action: "DescribeRegions", Code: "ServiceUnavailable", Times: 1})
	regions, err := c.Regions(f.ctx())
	if err != nil || !slices.Contains(regions, "cn-hangzhou") {
		t.Fatalf("Regions after three refusals: %v, %v", regions, err)
	}
	calls := f.logged("DescribeRegions")
	var codes []string
	for _, c := range calls {
		codes = append(codes, c.Code)
		if c.RequestID == "" {
			t.Errorf("attempt %d logged without its RequestId", c.Attempt)
		}
	}
	if want := []string{"Throttling.User", "Throttling.User", "ServiceUnavailable", ""}; !slices.Equal(codes, want) {
		t.Errorf("attempts %q, want %q", codes, want)
	}
	if len(f.waits) != 3 || f.waits[1] <= f.waits[0]*5/4 || f.waits[2] <= f.waits[1]*5/4 {
		t.Errorf("backoff %v: want three waits, each longer", f.waits)
	}
	// Past the attempts: the error says throttled, and counts as one.
	f.reset()
	f.inject(ecsemu.Fault{Action: "DescribeRegions", Code: "Throttling.User", Times: -1})
	_, err = c.Regions(f.ctx())
	if !errors.Is(err, alibaba.ErrThrottled) || alibaba.Code(err) != "Throttling.User" {
		t.Errorf("throttled for good: %v", err)
	}
	if n := len(f.logged("DescribeRegions")); n != 6 {
		t.Errorf("%d attempts, want 6", n)
	}
	f.emu.ClearFaults()
}

func TestUnansweredCallsRepeatOnlyWithAToken(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(alibaba.Credentials{})
	ctx := f.ctx()
	before := len(f.emu.Inventory().Disks)
	f.inject(ecsemu.Fault{Action: "CreateDisk", Code: "Timeout", Execute: true})
	id, err := c.CreateDisk(ctx, alibaba.DiskSpec{Token: "m-2-disk-sda", ZoneID: zone, SizeGiB: 20})
	if err != nil {
		t.Fatalf("CreateDisk with a token after a lost answer: %v", err)
	}
	if n := len(f.emu.Inventory().Disks); n != before+1 {
		t.Errorf("%d disks made by a call that was answered the second time; want 1", n-before)
	}
	if d, err := c.Disk(ctx, id); err != nil || d.ID != id {
		t.Errorf("the disk the retry named: %+v, %v", d, err)
	}
	calls := f.logged("CreateDisk")
	if len(calls) != 2 || calls[0].Code != "NoAnswer" || calls[1].Result != id {
		t.Errorf("logged %+v", calls)
	}
	// Without a token the call is not repeated blindly.
	f.inject(ecsemu.Fault{Action: "CreateDisk", Code: "Timeout", Execute: true})
	_, err = c.CreateDisk(ctx, alibaba.DiskSpec{ZoneID: zone, SizeGiB: 20})
	if !errors.Is(err, alibaba.ErrUnknownOutcome) {
		t.Errorf("an unanswered call without a token: %v, want ErrUnknownOutcome", err)
	}
}

func TestAttachDetachStartStopAreIdempotent(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(alibaba.Credentials{})
	ctx := f.ctx()
	gw, _ := f.gateway(c, "m-3-gateway")
	other, _ := f.gateway(c, "m-3-other")
	id, err := c.CreateDisk(ctx, alibaba.DiskSpec{Token: "m-3-disk", ZoneID: zone, SizeGiB: 20})
	if err != nil {
		t.Fatal(err)
	}
	// AttachDisk on a Creating disk waits for it; its answer lost (the
	// attach happened), the call still ends with the disk in use.
	f.inject(ecsemu.Fault{Action: "AttachDisk", Code: "Timeout", Execute: true})
	if d, err := c.AttachDisk(ctx, id, gw.ID); err != nil || d.Status != "In_use" {
		t.Fatalf("AttachDisk under a lost answer: %+v, %v", d, err)
	}
	if d, err := c.AttachDisk(ctx, id, gw.ID); err != nil || d.InstanceID != gw.ID {
		t.Errorf("AttachDisk again: %+v, %v", d, err)
	}
	if _, err := c.AttachDisk(ctx, id, other.ID); !errors.Is(err, cloud.ErrConflict) {
		t.Errorf("attaching to another instance: %v, want ErrConflict", err)
	}
	for range 2 {
		if err := c.DetachDisk(ctx, id, gw.ID); err != nil {
			t.Fatalf("DetachDisk: %v", err)
		}
	}
	if d, _ := c.Disk(ctx, id); d.Status != "Available" || d.InstanceID != "" {
		t.Errorf("after DetachDisk: %+v", d)
	}
	for range 2 {
		if in, err := c.StopInstance(ctx, gw.ID, false); err != nil || in.Status != "Stopped" {
			t.Fatalf("StopInstance: %+v, %v", in, err)
		}
	}
	f.inject(ecsemu.Fault{Action: "StartInstance", Code: "IncorrectInstanceStatus"})
	for range 2 {
		if in, err := c.StartInstance(ctx, gw.ID); err != nil || in.Status != "Running" {
			t.Fatalf("StartInstance: %+v, %v", in, err)
		}
	}
	for range 2 {
		if err := c.DeleteDisk(ctx, id); err != nil {
			t.Errorf("DeleteDisk (twice): %v", err)
		}
		if err := c.DeleteInstance(ctx, other.ID); err != nil {
			t.Errorf("DeleteInstance (twice): %v", err)
		}
	}
}

func TestErrorsAreClassified(t *testing.T) {
	f := newFixture(t, func(o *ecsemu.Options) { o.Quota.Snapshots = 1 })
	c := f.client(alibaba.Credentials{})
	ctx := f.ctx()
	gw, _ := f.gateway(c, "m-4-gateway")
	id, _ := c.CreateDisk(ctx, alibaba.DiskSpec{Token: "m-4-disk", ZoneID: zone, SizeGiB: 20})
	if _, err := c.AttachDisk(ctx, id, gw.ID); err != nil {
		t.Fatal(err)
	}
	s1, err := c.CreateSnapshot(ctx, alibaba.SnapshotSpec{Token: "m-4-p1", DiskID: id, Name: "ferry-p1"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []int
	if s, err := c.WaitSnapshot(ctx, s1, func(p int) { seen = append(seen, p) }); err != nil || s.Progress != 100 {
		t.Fatalf("WaitSnapshot: %+v, %v", s, err)
	}
	if len(seen) < 2 || seen[len(seen)-1] != 100 || seen[0] == 100 {
		t.Errorf("progress reported %v", seen)
	}
	_, err = c.CreateSnapshot(ctx, alibaba.SnapshotSpec{Token: "m-4-p2", DiskID: id, Name: "ferry-p2"})
	if !errors.Is(err, alibaba.ErrQuota) || alibaba.Code(err) != "QuotaExceed.Snapshot" {
		t.Errorf("past the snapshot quota: %v", err)
	}
	f.inject(ecsemu.Fault{Action: "DescribeDisks", Code: "InvalidAccessKeyId.NotFound"})
	if _, err := c.Disk(ctx, id); !errors.Is(err, alibaba.ErrDenied) || !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("a refused key: %v", err)
	}
	if _, err := c.Disk(ctx, "d-nothere"); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("an unknown disk: %v", err)
	}
	if err := c.DeleteDisk(ctx, id); !errors.Is(err, cloud.ErrConflict) || alibaba.Code(err) != "IncorrectDiskStatus" {
		t.Errorf("deleting an attached disk: %v", err)
	}
	f.inject(ecsemu.Fault{Action: "DescribeDisks", Code: "OperationConflict", Times: 2})
	if _, err := c.Disk(ctx, id); err != nil {
		t.Errorf("OperationConflict is retried: %v", err)
	}
}

func TestListsAreFollowedToTheEnd(t *testing.T) {
	f := newFixture(t, func(o *ecsemu.Options) { o.Timing = &ecsemu.Timing{}; o.Quota.Disks = 400 })
	c := f.client(alibaba.Credentials{})
	ctx := f.ctx()
	tags := map[string]string{"ferry:migration": "m-paging"}
	var want []string
	for i := range 230 {
		id, err := c.CreateDisk(ctx, alibaba.DiskSpec{Token: fmt.Sprintf("paging-%d", i), ZoneID: zone, SizeGiB: 20, Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	c.CreateDisk(ctx, alibaba.DiskSpec{Token: "untagged", ZoneID: zone, SizeGiB: 20})
	f.reset()
	got, err := c.Disks(ctx, alibaba.Filter{Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("Disks listed %d of %d tagged disks", len(ids), len(want))
	}
	if n := len(f.logged("DescribeDisks")); n != 3 {
		t.Errorf("%d DescribeDisks calls for 230 disks, want 3 pages of 100", n)
	}
}

func TestRAMRoleSession(t *testing.T) {
	f := newFixture(t, func(o *ecsemu.Options) {
		o.Keys = []ecsemu.Key{{ID: "LTAI-ferry", Secret: "ferry-secret", User: "ferry", Allow: []string{"sts:AssumeRole"}}}
		o.Roles = []ecsemu.Role{{Name: "ferry-migrate", Allow: []string{"ecs:*"}}}
		o.TimestampWindow = 3 * time.Hour
	})
	c := f.client(alibaba.Credentials{AccessKeyID: "LTAI-ferry", AccessKeySecret: "ferry-secret",
		RoleARN: "acs:ram::1000000000000001:role/ferry-migrate", SessionDuration: 15 * time.Minute})
	ctx := f.ctx()
	if _, err := c.Regions(ctx); err != nil {
		t.Fatalf("a call through the role: %v", err)
	}
	if _, err := c.Regions(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.logged("AssumeRole")); n != 1 {
		t.Errorf("%d AssumeRole calls for two calls in one session", n)
	}
	// The cloud's clock passes the session's end: the next call opens a new
	// session and goes through.
	f.now.Add(20 * time.Minute)
	if _, err := c.Regions(ctx); err != nil {
		t.Fatalf("a call after the session expired: %v", err)
	}
	if n := len(f.logged("AssumeRole")); n != 2 {
		t.Errorf("%d AssumeRole calls after an expiry, want 2", n)
	}
	// The key alone may not call ECS.
	plain := f.client(alibaba.Credentials{AccessKeyID: "LTAI-ferry", AccessKeySecret: "ferry-secret"})
	if _, err := plain.Regions(ctx); !errors.Is(err, alibaba.ErrDenied) {
		t.Errorf("the AssumeRole-only key calling ECS itself: %v", err)
	}
	bad := f.client(alibaba.Credentials{AccessKeyID: "LTAI-ferry", AccessKeySecret: "ferry-secret", RoleARN: "acs:ram::1000000000000001:role/other"})
	if _, err := bad.Regions(ctx); !errors.Is(err, alibaba.ErrDenied) || alibaba.Code(err) != "EntityNotExist.Role" {
		t.Errorf("an unknown role: %v", err)
	}
}

func TestCheckPermissions(t *testing.T) {
	f := newFixture(t, func(o *ecsemu.Options) {
		o.Keys = []ecsemu.Key{
			{ID: ecsemu.DefaultKeyID, Secret: ecsemu.DefaultKeySecret},
			{ID: "LTAI-readonly", Secret: "ro", User: "auditor", Allow: []string{"ecs:Describe*"}},
		}
	})
	full := f.client(alibaba.Credentials{}).CheckPermissions(f.ctx())
	if full.Credentials != nil || len(full.Missing()) != 0 || len(full.Undecided()) != 0 || len(full.Permissions) < 25 {
		t.Fatalf("a root key: %+v", full)
	}
	for _, p := range full.Permissions {
		if p.RequestID == "" {
			t.Errorf("%s probed without a RequestId", p.Action)
		}
	}
	if inv := f.emu.Inventory(); !inv.Empty() {
		t.Errorf("the probes made something: %v", inv)
	}
	ro := f.client(alibaba.Credentials{AccessKeyID: "LTAI-readonly", AccessKeySecret: "ro"}).CheckPermissions(f.ctx())
	miss := ro.Missing()
	for _, want := range []string{"ecs:RunInstances", "ecs:CreateSnapshot", "ecs:DeleteSnapshot", "ecs:CreateImage", "ecs:AttachDisk", "ecs:CreateDisk", "ecs:AuthorizeSecurityGroup"} {
		if !slices.Contains(miss, want) {
			t.Errorf("a Describe* key: %s not reported missing (missing %v)", want, miss)
		}
	}
	if slices.Contains(miss, "ecs:DescribeInstances") || slices.Contains(miss, "ecs:DescribeSecurityGroupAttribute") {
		t.Errorf("a Describe* key reported lacking a Describe: %v", miss)
	}
	var pol struct {
		Statement []struct {
			Effect string
			Action []string
		}
	}
	if err := json.Unmarshal([]byte(ro.Policy()), &pol); err != nil || len(pol.Statement) != 1 || !slices.Equal(pol.Statement[0].Action, miss) {
		t.Errorf("policy %s: %v", ro.Policy(), err)
	}
	checks := ro.Checks()
	if len(checks) != 2 || !checks[0].Passed || checks[1].Passed || !strings.Contains(checks[1].Message, "ecs:CreateSnapshot") {
		t.Errorf("checks %+v", checks)
	}
	bad := f.client(alibaba.Credentials{AccessKeyID: ecsemu.DefaultKeyID, AccessKeySecret: "wrong"}).CheckPermissions(f.ctx())
	if bad.Credentials == nil || alibaba.Code(bad.Credentials) != "SignatureDoesNotMatch" || len(bad.Permissions) != 0 {
		t.Errorf("a wrong secret: %+v", bad)
	}
}
