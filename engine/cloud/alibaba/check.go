package alibaba

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Permission is what probing one RAM action found.
type Permission struct {
	Action  string // the RAM action, "ecs:CreateSnapshot"
	Allowed bool
	// Probe is how it was asked: "DryRun" (ECS validates and stops),
	// "nonexistent id" (RAM is checked before the id is looked up, so any
	// answer but Forbidden proves the permission and nothing is made), or
	// "call" (a harmless Describe).
	Probe     string
	Code      string // the answer's code ("DryRunOperation", "InvalidDiskId.NotFound", "Forbidden.RAM")
	RequestID string
	// Err is set when the answer proves neither (throttled past the
	// retries, no answer).
	Err error
}

// CheckResult is the account check.
type CheckResult struct {
	// Credentials is set when the key itself was refused (unknown key, bad
	// secret, expired token, a role that cannot be assumed): nothing else
	// was probed.
	Credentials error
	Permissions []Permission
}

// Missing lists the RAM actions the key lacks, sorted.
func (r CheckResult) Missing() []string {
	var out []string
	for _, p := range r.Permissions {
		if !p.Allowed && p.Err == nil {
			out = append(out, p.Action)
		}
	}
	sort.Strings(out)
	return out
}

// Undecided lists the actions whose probe got no verdict.
func (r CheckResult) Undecided() []Permission {
	var out []Permission
	for _, p := range r.Permissions {
		if p.Err != nil {
			out = append(out, p)
		}
	}
	return out
}

// Policy is a RAM policy document granting what Missing lists, as a RAM
// policy review would propose it.
func (r CheckResult) Policy() string {
	miss := r.Missing()
	if len(miss) == 0 {
		return ""
	}
	b, _ := json.MarshalIndent(map[string]any{"Version": "1", "Statement": []map[string]any{
		{"Effect": "Allow", "Action": miss, "Resource": "*"}}}, "", "  ")
	return string(b)
}

// probe is one harmless call proving one action.
type probe struct {
	action string // ECS action
	how    string
	req    requests.AcsRequest
	call   func(e *ecs.Client) (string, error)
}

// Fake ids a probe names: ECS's prefixes, shapes no real resource has.
const (
	probeInstance = "i-ferrypermissionprobe"
	probeDisk     = "d-ferrypermissionprobe"
	probeSnapshot = "s-ferrypermissionprobe"
	probeImage    = "m-ferrypermissionprobe"
	probeGroup    = "sg-ferrypermissionprobe"
	probeVpc      = "vpc-ferrypermissionprobe"
)

func (c *Client) probes() []probe {
	var ps []probe
	add := func(action, how string, req requests.AcsRequest, call func(e *ecs.Client) (string, error)) {
		ps = append(ps, probe{action, how, req, call})
	}
	dry := requests.NewBoolean(true)
	{
		r := ecs.CreateRunInstancesRequest()
		r.DryRun, r.ImageId, r.InstanceType, r.VSwitchId, r.SecurityGroupId = dry, probeImage, "ecs.g7.large", "vsw-ferrypermissionprobe", probeGroup
		add("RunInstances", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.RunInstances(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeInstancesRequest()
		r.DryRun = dry
		add("DescribeInstances", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeInstances(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateStartInstanceRequest()
		r.DryRun, r.InstanceId = dry, probeInstance
		add("StartInstance", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.StartInstance(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateStopInstanceRequest()
		r.DryRun, r.InstanceId = dry, probeInstance
		add("StopInstance", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.StopInstance(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDeleteInstanceRequest()
		r.DryRun, r.InstanceId = dry, probeInstance
		add("DeleteInstance", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.DeleteInstance(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeDisksRequest()
		r.DryRun = dry
		add("DescribeDisks", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeDisks(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeSnapshotsRequest()
		r.DryRun = dry
		add("DescribeSnapshots", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeSnapshots(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeImagesRequest()
		r.DryRun = dry
		add("DescribeImages", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeImages(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeSecurityGroupsRequest()
		r.DryRun = dry
		add("DescribeSecurityGroups", "DryRun", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeSecurityGroups(r); return reqID(x, err) })
	}
	// Actions without DryRun: a nonexistent id, so that nothing can be
	// made or changed whatever the answer.
	const nx = "nonexistent id"
	{
		r := ecs.CreateCreateDiskRequest()
		r.ZoneId, r.SnapshotId, r.DiskCategory = c.cfg.Region+"-ferryprobe", probeSnapshot, "cloud_essd"
		add("CreateDisk", nx, r, func(e *ecs.Client) (string, error) { x, err := e.CreateDisk(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateAttachDiskRequest()
		r.DiskId, r.InstanceId = probeDisk, probeInstance
		add("AttachDisk", nx, r, func(e *ecs.Client) (string, error) { x, err := e.AttachDisk(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDetachDiskRequest()
		r.DiskId, r.InstanceId = probeDisk, probeInstance
		add("DetachDisk", nx, r, func(e *ecs.Client) (string, error) { x, err := e.DetachDisk(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDeleteDiskRequest()
		r.DiskId = probeDisk
		add("DeleteDisk", nx, r, func(e *ecs.Client) (string, error) { x, err := e.DeleteDisk(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateResizeDiskRequest()
		r.DiskId, r.NewSize = probeDisk, requests.NewInteger(20)
		add("ResizeDisk", nx, r, func(e *ecs.Client) (string, error) { x, err := e.ResizeDisk(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateCreateSnapshotRequest()
		r.DiskId = probeDisk
		add("CreateSnapshot", nx, r, func(e *ecs.Client) (string, error) { x, err := e.CreateSnapshot(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDeleteSnapshotRequest()
		r.SnapshotId = probeSnapshot
		add("DeleteSnapshot", nx, r, func(e *ecs.Client) (string, error) { x, err := e.DeleteSnapshot(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateCreateImageRequest()
		r.SnapshotId, r.ImageName = probeSnapshot, "ferry-permission-probe"
		add("CreateImage", nx, r, func(e *ecs.Client) (string, error) { x, err := e.CreateImage(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDeleteImageRequest()
		r.ImageId = probeImage
		add("DeleteImage", nx, r, func(e *ecs.Client) (string, error) { x, err := e.DeleteImage(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateCreateSecurityGroupRequest()
		r.VpcId, r.SecurityGroupName = probeVpc, "ferry-permission-probe"
		add("CreateSecurityGroup", nx, r, func(e *ecs.Client) (string, error) { x, err := e.CreateSecurityGroup(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateAuthorizeSecurityGroupRequest()
		r.SecurityGroupId, r.IpProtocol, r.PortRange, r.SourceCidrIp = probeGroup, "tcp", "8443/8443", "192.0.2.1/32"
		add("AuthorizeSecurityGroup", nx, r, func(e *ecs.Client) (string, error) { x, err := e.AuthorizeSecurityGroup(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeSecurityGroupAttributeRequest()
		r.SecurityGroupId = probeGroup
		add("DescribeSecurityGroupAttribute", nx, r, func(e *ecs.Client) (string, error) {
			x, err := e.DescribeSecurityGroupAttribute(r)
			return reqID(x, err)
		})
	}
	{
		r := ecs.CreateDeleteSecurityGroupRequest()
		r.SecurityGroupId = probeGroup
		add("DeleteSecurityGroup", nx, r, func(e *ecs.Client) (string, error) { x, err := e.DeleteSecurityGroup(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateGetInstanceConsoleOutputRequest()
		r.InstanceId = probeInstance
		add("GetInstanceConsoleOutput", nx, r, func(e *ecs.Client) (string, error) {
			x, err := e.GetInstanceConsoleOutput(r)
			return reqID(x, err)
		})
	}
	{
		r := ecs.CreateDescribeInstanceTypesRequest()
		r.InstanceTypeFamily = "ecs.g7"
		add("DescribeInstanceTypes", "call", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeInstanceTypes(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeVSwitchesRequest()
		add("DescribeVSwitches", "call", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeVSwitches(r); return reqID(x, err) })
	}
	{
		r := ecs.CreateDescribeVpcsRequest()
		add("DescribeVpcs", "call", r, func(e *ecs.Client) (string, error) { x, err := e.DescribeVpcs(r); return reqID(x, err) })
	}
	return ps
}

// reqID returns the RequestId of an SDK answer (every answer struct has
// the field), or the error.
func reqID(resp any, err error) (string, error) {
	if err != nil {
		return "", err
	}
	v := reflect.ValueOf(resp)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", nil
		}
		v = v.Elem()
	}
	if f := v.FieldByName("RequestId"); f.IsValid() && f.Kind() == reflect.String {
		return f.String(), nil
	}
	return "", nil
}

// RequiredActions are the RAM actions the provider calls, sorted.
func (c *Client) RequiredActions() []string {
	var out []string
	for _, p := range c.probes() {
		out = append(out, "ecs:"+p.action)
	}
	if c.role != nil {
		out = append(out, "sts:AssumeRole")
	}
	sort.Strings(out)
	return out
}

// CheckPermissions calls every action the provider needs, harmlessly, and
// reports which the key may call. The first call (DescribeRegions) tests
// the credentials themselves; when they are refused nothing else is asked.
func (c *Client) CheckPermissions(ctx context.Context) CheckResult {
	if _, err := c.Regions(ctx); err != nil {
		if errors.Is(err, ErrDenied) && !strings.HasPrefix(Code(err), "Forbidden") {
			return CheckResult{Credentials: err}
		}
		if !errors.Is(err, ErrDenied) {
			return CheckResult{Credentials: fmt.Errorf("the cloud API could not be reached: %w", err)}
		}
	}
	ps := c.probes()
	out := make([]Permission, len(ps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = c.runProbe(ctx, p)
		}()
	}
	wg.Wait()
	for _, p := range out {
		if p.Err != nil && errors.Is(p.Err, ErrDenied) && !strings.HasPrefix(p.Code, "Forbidden") && p.Code != "NoPermission" {
			return CheckResult{Credentials: p.Err}
		}
	}
	return CheckResult{Permissions: out}
}

func (c *Client) runProbe(ctx context.Context, p probe) Permission {
	res := Permission{Action: "ecs:" + p.action, Probe: p.how}
	err := c.do(ctx, op{action: p.action, object: "permission probe", idempotent: true}, p.req, func(e *ecs.Client) (string, string, error) {
		id, err := p.call(e)
		res.RequestID = id
		return id, "", err
	})
	if err == nil {
		res.Allowed = true
		return res
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code == "" {
		res.Err = err
		return res
	}
	res.Code, res.RequestID = ae.Code, ae.RequestID
	switch {
	case strings.HasPrefix(ae.Code, "Forbidden"), ae.Code == "NoPermission":
		// Not allowed.
	case errors.Is(err, ErrDenied), errors.Is(err, ErrThrottled):
		res.Err = err
	default:
		// DryRunOperation, a NotFound of the probe's id, an invalid
		// parameter: RAM let the call through.
		res.Allowed = true
	}
	return res
}

// Checks turns the result into the account check's lines.
func (r CheckResult) Checks() []cloud.Check {
	if r.Credentials != nil {
		return []cloud.Check{{Name: "cloud API", Message: "the AccessKey was refused: " + r.Credentials.Error()}}
	}
	ok := 0
	for _, p := range r.Permissions {
		if p.Allowed {
			ok++
		}
	}
	out := []cloud.Check{{Name: "cloud API", Passed: true, Message: "ECS accepts the AccessKey's signature"}}
	perm := cloud.Check{Name: "permissions", Passed: len(r.Missing()) == 0 && len(r.Undecided()) == 0}
	switch {
	case perm.Passed:
		perm.Message = fmt.Sprintf("all %d actions the migration calls are allowed", ok)
	case len(r.Missing()) > 0:
		perm.Message = fmt.Sprintf("the key lacks %d of %d actions: %s; grant them with this RAM policy:\n%s",
			len(r.Missing()), len(r.Permissions), strings.Join(r.Missing(), ", "), r.Policy())
	default:
		var names []string
		for _, p := range r.Undecided() {
			names = append(names, p.Action)
		}
		perm.Message = "no verdict for " + strings.Join(names, ", ") + " (throttled or no answer): run the check again"
	}
	return append(out, perm)
}
