package alibaba

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Filter narrows a list. Empty fields do not filter.
type Filter struct {
	IDs        []string
	Tags       map[string]string
	InstanceID string // disks and snapshots of an instance
	DiskID     string // snapshots of a disk
	VpcID      string // security groups
}

// Instance is an ECS instance as the provider needs it.
type Instance struct {
	ID, Name, Status, Type, ImageID string
	VpcID, VSwitchID, ZoneID        string
	PrivateIP                       string
	SecurityGroups                  []string
	Tags                            map[string]string
}

// Disk is an ECS disk.
type Disk struct {
	ID, Name, Status, Category, ZoneID string
	SizeGiB                            int
	Type                               string // system | data
	InstanceID, Device                 string
	SourceSnapshotID                   string
	Tags                               map[string]string
}

// Snapshot is an ECS snapshot.
type Snapshot struct {
	ID, Name, Status string // progressing | accomplished | failed
	Progress         int    // percent
	DiskID           string
	DiskSizeGiB      int
	CreatedAt        time.Time
	Tags             map[string]string
}

// Image is a custom image.
type Image struct {
	ID, Name, Status string
	Snapshots        []string // the system disk's first
	Tags             map[string]string
}

// SecurityGroup is an ECS security group.
type SecurityGroup struct {
	ID, Name, VpcID string
	Tags            map[string]string
}

// Rule is an ingress rule: TCP to PortRange ("8443/8443") from SourceCIDR.
type Rule struct {
	Protocol, PortRange, SourceCIDR, Description string
}

// VSwitch is a vSwitch of a VPC.
type VSwitch struct{ ID, VpcID, ZoneID, CIDR string }

func checkToken(t string) error {
	if len(t) > 64 {
		return fmt.Errorf("alibaba: ClientToken %q is longer than 64 characters: %w", t, cloud.ErrInvalid)
	}
	for _, r := range t {
		if r > 0x7e || r < 0x20 {
			return fmt.Errorf("alibaba: ClientToken %q: ASCII only: %w", t, cloud.ErrInvalid)
		}
	}
	return nil
}

func idList(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

func notFound(code string) bool {
	return strings.HasSuffix(code, ".NotFound") && !strings.HasPrefix(code, "InvalidAccessKeyId")
}

func tagMap(list []ecs.Tag) map[string]string {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]string, len(list))
	for _, t := range list {
		k, v := t.TagKey, t.TagValue
		if k == "" {
			k, v = t.Key, t.Value
		}
		m[k] = v
	}
	return m
}

// sortedTags returns the keys of tags sorted (requests carry them in order).
func sortedTags(tags map[string]string) []string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// --- security groups ---

// SecurityGroupSpec makes a security group.
type SecurityGroupSpec struct {
	Token       string // ClientToken
	Name        string
	Description string
	VpcID       string
	Tags        map[string]string
}

// CreateSecurityGroup makes the group (once per Token) and returns its id.
func (c *Client) CreateSecurityGroup(ctx context.Context, s SecurityGroupSpec) (string, error) {
	if err := checkToken(s.Token); err != nil {
		return "", err
	}
	if s.VpcID == "" {
		return "", fmt.Errorf("alibaba: a security group needs its VPC: %w", cloud.ErrInvalid)
	}
	req := ecs.CreateCreateSecurityGroupRequest()
	req.ClientToken, req.SecurityGroupName, req.Description, req.VpcId = s.Token, s.Name, s.Description, s.VpcID
	var tags []ecs.CreateSecurityGroupTag
	for _, k := range sortedTags(s.Tags) {
		tags = append(tags, ecs.CreateSecurityGroupTag{Key: k, Value: s.Tags[k]})
	}
	if len(tags) > 0 {
		req.Tag = &tags
	}
	var id string
	err := c.do(ctx, op{action: "CreateSecurityGroup", object: s.Name, idempotent: s.Token != ""}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.CreateSecurityGroup(req)
		if err != nil {
			return "", "", err
		}
		id = r.SecurityGroupId
		return r.RequestId, id, nil
	})
	return id, err
}

// AuthorizeIngress adds ingress rules (ECS ignores a rule it already has).
func (c *Client) AuthorizeIngress(ctx context.Context, groupID, token string, rules []Rule) error {
	if err := checkToken(token); err != nil {
		return err
	}
	if len(rules) == 0 {
		return nil
	}
	req := ecs.CreateAuthorizeSecurityGroupRequest()
	req.SecurityGroupId, req.ClientToken = groupID, token
	var perms []ecs.AuthorizeSecurityGroupPermissions
	for _, r := range rules {
		proto := r.Protocol
		if proto == "" {
			proto = "tcp"
		}
		perms = append(perms, ecs.AuthorizeSecurityGroupPermissions{IpProtocol: proto, PortRange: r.PortRange, SourceCidrIp: r.SourceCIDR,
			Policy: "accept", Priority: "1", NicType: "intranet", Description: r.Description})
	}
	req.Permissions = &perms
	// Adding a rule twice changes nothing, so the call is safe to repeat.
	return c.do(ctx, op{action: "AuthorizeSecurityGroup", object: groupID, idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.AuthorizeSecurityGroup(req)
		if err != nil {
			return "", "", err
		}
		return r.RequestId, fmt.Sprintf("%d rules", len(rules)), nil
	})
}

// IngressRules lists the group's ingress rules.
func (c *Client) IngressRules(ctx context.Context, groupID string) ([]Rule, error) {
	req := ecs.CreateDescribeSecurityGroupAttributeRequest()
	req.SecurityGroupId, req.Direction = groupID, "ingress"
	var out []Rule
	err := c.do(ctx, op{action: "DescribeSecurityGroupAttribute", object: groupID, idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.DescribeSecurityGroupAttribute(req)
		if err != nil {
			return "", "", err
		}
		out = out[:0]
		for _, p := range r.Permissions.Permission {
			out = append(out, Rule{Protocol: strings.ToLower(p.IpProtocol), PortRange: p.PortRange, SourceCIDR: p.SourceCidrIp, Description: p.Description})
		}
		return r.RequestId, fmt.Sprintf("%d rules", len(out)), nil
	})
	return out, err
}

// DeleteSecurityGroup deletes the group; one already gone is not an error.
// ECS releases a deleted instance's membership a little after the instance
// is gone, so DependencyViolation is waited out for up to two minutes.
// Errors: ErrConflict while instances stay in it.
func (c *Client) DeleteSecurityGroup(ctx context.Context, id string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req := ecs.CreateDeleteSecurityGroupRequest()
		req.SecurityGroupId = id
		err := c.do(ctx, op{action: "DeleteSecurityGroup", object: id, idempotent: true, ok: notFound}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DeleteSecurityGroup(req)
			if err != nil {
				return "", "", err
			}
			return r.RequestId, "", nil
		})
		if Code(err) != "DependencyViolation" || time.Now().After(deadline) {
			return err
		}
		if err := c.cfg.Sleep(ctx, 5*c.cfg.Poll); err != nil {
			return err
		}
	}
}

// SecurityGroups lists groups, every page.
func (c *Client) SecurityGroups(ctx context.Context, f Filter) ([]SecurityGroup, error) {
	var out []SecurityGroup
	err := byToken("DescribeSecurityGroups", func(token string) (string, error) {
		req := ecs.CreateDescribeSecurityGroupsRequest()
		req.SecurityGroupIds, req.VpcId, req.MaxResults, req.NextToken = idList(f.IDs), f.VpcID, requests.NewInteger(100), token
		req.Tag = describeSGTags(f.Tags)
		var next string
		err := c.do(ctx, op{action: "DescribeSecurityGroups", idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DescribeSecurityGroups(req)
			if err != nil {
				return "", "", err
			}
			for _, g := range r.SecurityGroups.SecurityGroup {
				out = append(out, SecurityGroup{ID: g.SecurityGroupId, Name: g.SecurityGroupName, VpcID: g.VpcId, Tags: tagMap(g.Tags.Tag)})
			}
			next = r.NextToken
			return r.RequestId, fmt.Sprintf("%d groups", len(r.SecurityGroups.SecurityGroup)), nil
		})
		return next, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func describeSGTags(tags map[string]string) *[]ecs.DescribeSecurityGroupsTag {
	if len(tags) == 0 {
		return nil
	}
	var out []ecs.DescribeSecurityGroupsTag
	for _, k := range sortedTags(tags) {
		out = append(out, ecs.DescribeSecurityGroupsTag{Key: k, Value: tags[k]})
	}
	return &out
}

// maxPages bounds every list (100 per page: a million resources).
const maxPages = 10000

func errPaging(action string) error {
	return fmt.Errorf("alibaba: %s returned more than %d pages: %w", action, maxPages, cloud.ErrInvalid)
}

// byToken follows a NextToken list to its end: page sends the token it is
// given ("" first) and returns the answer's NextToken ("" on the last page).
func byToken(action string, page func(token string) (next string, err error)) error {
	token := ""
	for range maxPages + 1 {
		next, err := page(token)
		if err != nil || next == "" {
			return err
		}
		token = next
	}
	return errPaging(action)
}

// --- instances ---

// InstanceSpec makes one pay-as-you-go instance.
type InstanceSpec struct {
	Token          string // ClientToken
	Name           string
	ImageID        string
	Type           string // "ecs.g7.large"
	VSwitchID      string
	SecurityGroups []string
	// UserData is the script the instance runs at boot (plain; it is
	// Base64-encoded here). At most 32 KiB.
	UserData      string
	SystemDiskGiB int    // 0: the image's size
	DiskCategory  string // system disk category (default cloud_essd)
	Tags          map[string]string
}

// RunInstance starts one instance (once per Token) and returns its id.
func (c *Client) RunInstance(ctx context.Context, s InstanceSpec) (string, error) {
	if err := checkToken(s.Token); err != nil {
		return "", err
	}
	if len(s.UserData) > 32<<10 {
		return "", fmt.Errorf("alibaba: user data of %d bytes: ECS takes 32 KiB: %w", len(s.UserData), cloud.ErrInvalid)
	}
	req := ecs.CreateRunInstancesRequest()
	req.ClientToken, req.InstanceName, req.ImageId, req.InstanceType, req.VSwitchId = s.Token, s.Name, s.ImageID, s.Type, s.VSwitchID
	req.InstanceChargeType, req.Amount = "PostPaid", requests.NewInteger(1)
	if len(s.SecurityGroups) == 1 {
		req.SecurityGroupId = s.SecurityGroups[0]
	} else if len(s.SecurityGroups) > 1 {
		sgs := s.SecurityGroups
		req.SecurityGroupIds = &sgs
	}
	if s.UserData != "" {
		req.UserData = base64.StdEncoding.EncodeToString([]byte(s.UserData))
	}
	cat := s.DiskCategory
	if cat == "" {
		cat = "cloud_essd"
	}
	req.SystemDiskCategory = cat
	if s.SystemDiskGiB > 0 {
		req.SystemDiskSize = strconv.Itoa(s.SystemDiskGiB)
	}
	var tags []ecs.RunInstancesTag
	for _, k := range sortedTags(s.Tags) {
		tags = append(tags, ecs.RunInstancesTag{Key: k, Value: s.Tags[k]})
	}
	if len(tags) > 0 {
		req.Tag = &tags
	}
	var id string
	err := c.do(ctx, op{action: "RunInstances", object: s.Name, idempotent: s.Token != ""}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.RunInstances(req)
		if err != nil {
			return "", "", err
		}
		if len(r.InstanceIdSets.InstanceIdSet) != 1 {
			return r.RequestId, "", fmt.Errorf("RunInstances answered %d instances for one", len(r.InstanceIdSets.InstanceIdSet))
		}
		id = r.InstanceIdSets.InstanceIdSet[0]
		return r.RequestId, id, nil
	})
	return id, err
}

func instanceOf(in ecs.Instance) Instance {
	out := Instance{ID: in.InstanceId, Name: in.InstanceName, Status: in.Status, Type: in.InstanceType, ImageID: in.ImageId,
		VpcID: in.VpcAttributes.VpcId, VSwitchID: in.VpcAttributes.VSwitchId, ZoneID: in.ZoneId,
		SecurityGroups: in.SecurityGroupIds.SecurityGroupId, Tags: tagMap(in.Tags.Tag)}
	if ips := in.VpcAttributes.PrivateIpAddress.IpAddress; len(ips) > 0 {
		out.PrivateIP = ips[0]
	}
	return out
}

// Instances lists instances, every page.
func (c *Client) Instances(ctx context.Context, f Filter) ([]Instance, error) {
	var out []Instance
	err := byToken("DescribeInstances", func(token string) (string, error) {
		req := ecs.CreateDescribeInstancesRequest()
		req.InstanceIds, req.MaxResults, req.NextToken = idList(f.IDs), requests.NewInteger(100), token
		if len(f.Tags) > 0 {
			var tags []ecs.DescribeInstancesTag
			for _, k := range sortedTags(f.Tags) {
				tags = append(tags, ecs.DescribeInstancesTag{Key: k, Value: f.Tags[k]})
			}
			req.Tag = &tags
		}
		var next string
		err := c.do(ctx, op{action: "DescribeInstances", object: strings.Join(f.IDs, ","), idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DescribeInstances(req)
			if err != nil {
				return "", "", err
			}
			for _, in := range r.Instances.Instance {
				out = append(out, instanceOf(in))
			}
			next = r.NextToken
			return r.RequestId, fmt.Sprintf("%d instances", len(r.Instances.Instance)), nil
		})
		return next, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Instance returns one instance. Errors: cloud.ErrNotFound.
func (c *Client) Instance(ctx context.Context, id string) (Instance, error) {
	list, err := c.Instances(ctx, Filter{IDs: []string{id}})
	if err != nil {
		return Instance{}, err
	}
	if len(list) != 1 {
		return Instance{}, fmt.Errorf("instance %s: %w", id, cloud.ErrNotFound)
	}
	return list[0], nil
}

// WaitInstance polls until the instance is in status. Errors:
// ErrNotFound, ErrConflict when it went elsewhere (back to Stopped after
// Starting while Running was awaited: it failed to start).
func (c *Client) WaitInstance(ctx context.Context, id, status string) (Instance, error) {
	var last Instance
	moving := false
	err := c.poll(ctx, func() (bool, error) {
		in, err := c.Instance(ctx, id)
		if err != nil {
			return false, err
		}
		last = in
		switch {
		case in.Status == status:
			return true, nil
		case in.Status == "Pending" || in.Status == "Starting" || in.Status == "Stopping":
			moving = true
		case moving && (in.Status == "Running" || in.Status == "Stopped"):
			return false, fmt.Errorf("instance %s settled %s, not %s: %w", id, in.Status, status, cloud.ErrConflict)
		}
		return false, nil
	})
	return last, err
}

func (c *Client) poll(ctx context.Context, f func() (bool, error)) error {
	wait := c.cfg.Poll
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*3/2, c.cfg.Poll*8)
	}
}

// StartInstance starts a stopped instance and waits until it runs; a
// running one is left alone.
func (c *Client) StartInstance(ctx context.Context, id string) (Instance, error) {
	for range 3 {
		in, err := c.Instance(ctx, id)
		if err != nil {
			return in, err
		}
		switch in.Status {
		case "Running":
			return in, nil
		case "Pending", "Starting":
			return c.WaitInstance(ctx, id, "Running")
		case "Stopping":
			if _, err := c.WaitInstance(ctx, id, "Stopped"); err != nil {
				return in, err
			}
			continue
		}
		req := ecs.CreateStartInstanceRequest()
		req.InstanceId = id
		err = c.do(ctx, op{action: "StartInstance", object: id}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.StartInstance(req)
			if err != nil {
				return "", "", err
			}
			return r.RequestId, "", nil
		})
		// A status conflict or no answer: look again.
		if err != nil && !errors.Is(err, cloud.ErrConflict) && !errors.Is(err, ErrUnknownOutcome) {
			return in, err
		}
	}
	return c.WaitInstance(ctx, id, "Running")
}

// StopInstance stops a running instance and waits until it has; a stopped
// one is left alone.
func (c *Client) StopInstance(ctx context.Context, id string, force bool) (Instance, error) {
	for range 3 {
		in, err := c.Instance(ctx, id)
		if err != nil {
			return in, err
		}
		switch in.Status {
		case "Stopped":
			return in, nil
		case "Stopping":
			return c.WaitInstance(ctx, id, "Stopped")
		case "Pending", "Starting":
			if _, err := c.WaitInstance(ctx, id, "Running"); err != nil {
				return in, err
			}
			continue
		}
		req := ecs.CreateStopInstanceRequest()
		req.InstanceId, req.ForceStop = id, requests.NewBoolean(force)
		err = c.do(ctx, op{action: "StopInstance", object: id}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.StopInstance(req)
			if err != nil {
				return "", "", err
			}
			return r.RequestId, "", nil
		})
		if err != nil && !errors.Is(err, cloud.ErrConflict) && !errors.Is(err, ErrUnknownOutcome) {
			return in, err
		}
	}
	return c.WaitInstance(ctx, id, "Stopped")
}

// DeleteInstance releases the instance whatever its state (Force), and
// waits until ECS no longer lists it; one already gone is not an error.
func (c *Client) DeleteInstance(ctx context.Context, id string) error {
	req := ecs.CreateDeleteInstanceRequest()
	req.InstanceId, req.Force = id, requests.NewBoolean(true)
	err := c.do(ctx, op{action: "DeleteInstance", object: id, idempotent: true, ok: notFound}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.DeleteInstance(req)
		if err != nil {
			return "", "", err
		}
		return r.RequestId, "", nil
	})
	if err != nil {
		return err
	}
	return c.poll(ctx, func() (bool, error) {
		_, err := c.Instance(ctx, id)
		if errors.Is(err, cloud.ErrNotFound) {
			return true, nil
		}
		return false, err
	})
}

// ConsoleOutput is the tail of the instance's serial console.
func (c *Client) ConsoleOutput(ctx context.Context, id string) (string, error) {
	req := ecs.CreateGetInstanceConsoleOutputRequest()
	req.InstanceId = id
	var out string
	err := c.do(ctx, op{action: "GetInstanceConsoleOutput", object: id, idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.GetInstanceConsoleOutput(req)
		if err != nil {
			return "", "", err
		}
		b, err := base64.StdEncoding.DecodeString(r.ConsoleOutput)
		if err != nil {
			return r.RequestId, "", fmt.Errorf("console output is not Base64: %w", err)
		}
		out = string(b)
		return r.RequestId, fmt.Sprintf("%d bytes", len(b)), nil
	})
	return out, err
}

// --- disks ---

// DiskSpec makes a pay-as-you-go data disk, empty or from a snapshot.
type DiskSpec struct {
	Token      string
	Name       string
	ZoneID     string
	SizeGiB    int    // 0 with SnapshotID: the snapshot's size
	Category   string // default cloud_essd
	SnapshotID string
	Tags       map[string]string
}

// CreateDisk makes the disk (once per Token) and returns its id.
func (c *Client) CreateDisk(ctx context.Context, s DiskSpec) (string, error) {
	if err := checkToken(s.Token); err != nil {
		return "", err
	}
	req := ecs.CreateCreateDiskRequest()
	req.ClientToken, req.DiskName, req.ZoneId, req.SnapshotId = s.Token, s.Name, s.ZoneID, s.SnapshotID
	req.DiskCategory = s.Category
	if req.DiskCategory == "" {
		req.DiskCategory = "cloud_essd"
	}
	if s.SizeGiB > 0 {
		req.Size = requests.NewInteger(s.SizeGiB)
	}
	var tags []ecs.CreateDiskTag
	for _, k := range sortedTags(s.Tags) {
		tags = append(tags, ecs.CreateDiskTag{Key: k, Value: s.Tags[k]})
	}
	if len(tags) > 0 {
		req.Tag = &tags
	}
	var id string
	err := c.do(ctx, op{action: "CreateDisk", object: s.Name, idempotent: s.Token != ""}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.CreateDisk(req)
		if err != nil {
			return "", "", err
		}
		id = r.DiskId
		return r.RequestId, id, nil
	})
	return id, err
}

func diskOf(d ecs.Disk) Disk {
	return Disk{ID: d.DiskId, Name: d.DiskName, Status: d.Status, Category: d.Category, ZoneID: d.ZoneId, SizeGiB: d.Size,
		Type: d.Type, InstanceID: d.InstanceId, Device: d.Device, SourceSnapshotID: d.SourceSnapshotId, Tags: tagMap(d.Tags.Tag)}
}

// Disks lists disks, every page.
func (c *Client) Disks(ctx context.Context, f Filter) ([]Disk, error) {
	var out []Disk
	err := byToken("DescribeDisks", func(token string) (string, error) {
		req := ecs.CreateDescribeDisksRequest()
		req.DiskIds, req.InstanceId, req.MaxResults, req.NextToken = idList(f.IDs), f.InstanceID, requests.NewInteger(100), token
		if len(f.Tags) > 0 {
			var tags []ecs.DescribeDisksTag
			for _, k := range sortedTags(f.Tags) {
				tags = append(tags, ecs.DescribeDisksTag{Key: k, Value: f.Tags[k]})
			}
			req.Tag = &tags
		}
		var next string
		err := c.do(ctx, op{action: "DescribeDisks", object: strings.Join(f.IDs, ","), idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DescribeDisks(req)
			if err != nil {
				return "", "", err
			}
			for _, d := range r.Disks.Disk {
				out = append(out, diskOf(d))
			}
			next = r.NextToken
			return r.RequestId, fmt.Sprintf("%d disks", len(r.Disks.Disk)), nil
		})
		return next, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Disk returns one disk. Errors: cloud.ErrNotFound.
func (c *Client) Disk(ctx context.Context, id string) (Disk, error) {
	list, err := c.Disks(ctx, Filter{IDs: []string{id}})
	if err != nil {
		return Disk{}, err
	}
	if len(list) != 1 {
		return Disk{}, fmt.Errorf("disk %s: %w", id, cloud.ErrNotFound)
	}
	return list[0], nil
}

// WaitDisk polls until the disk is in status.
func (c *Client) WaitDisk(ctx context.Context, id, status string) (Disk, error) {
	var last Disk
	err := c.poll(ctx, func() (bool, error) {
		d, err := c.Disk(ctx, id)
		last = d
		return err == nil && d.Status == status, err
	})
	return last, err
}

// AttachDisk attaches the disk to the instance and waits until it is in
// use there; a disk already attached there is left alone. Errors:
// ErrConflict when it is attached to another instance.
func (c *Client) AttachDisk(ctx context.Context, diskID, instanceID string) (Disk, error) {
	for range 3 {
		d, err := c.Disk(ctx, diskID)
		if err != nil {
			return d, err
		}
		switch {
		case d.InstanceID == instanceID && d.Status == "In_use":
			return d, nil
		case d.InstanceID == instanceID && d.Status == "Attaching":
			return c.WaitDisk(ctx, diskID, "In_use")
		case d.Status == "Creating" || d.Status == "Detaching":
			if _, err := c.WaitDisk(ctx, diskID, "Available"); err != nil {
				return d, err
			}
			continue
		case d.InstanceID != "" && d.InstanceID != instanceID:
			return d, fmt.Errorf("disk %s is attached to %s, not %s: %w", diskID, d.InstanceID, instanceID, cloud.ErrConflict)
		}
		req := ecs.CreateAttachDiskRequest()
		req.DiskId, req.InstanceId = diskID, instanceID
		err = c.do(ctx, op{action: "AttachDisk", object: diskID + "→" + instanceID}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.AttachDisk(req)
			if err != nil {
				return "", "", err
			}
			return r.RequestId, "", nil
		})
		if err != nil && !errors.Is(err, cloud.ErrConflict) && !errors.Is(err, ErrUnknownOutcome) {
			return d, err
		}
	}
	return c.WaitDisk(ctx, diskID, "In_use")
}

// DetachDisk detaches the disk from the instance and waits until it is
// Available; a disk not attached there is left alone.
func (c *Client) DetachDisk(ctx context.Context, diskID, instanceID string) error {
	for range 3 {
		d, err := c.Disk(ctx, diskID)
		if errors.Is(err, cloud.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case d.InstanceID != instanceID || d.Status == "Available":
			return nil
		case d.Status == "Detaching":
			_, err := c.WaitDisk(ctx, diskID, "Available")
			return err
		case d.Status == "Attaching":
			if _, err := c.WaitDisk(ctx, diskID, "In_use"); err != nil {
				return err
			}
		}
		req := ecs.CreateDetachDiskRequest()
		req.DiskId, req.InstanceId = diskID, instanceID
		err = c.do(ctx, op{action: "DetachDisk", object: diskID + "←" + instanceID, ok: notFound}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DetachDisk(req)
			if err != nil {
				return "", "", err
			}
			return r.RequestId, "", nil
		})
		if err != nil && !errors.Is(err, cloud.ErrConflict) && !errors.Is(err, ErrUnknownOutcome) {
			return err
		}
	}
	_, err := c.WaitDisk(ctx, diskID, "Available")
	return err
}

// DeleteDisk deletes an Available disk; one already gone is not an error.
func (c *Client) DeleteDisk(ctx context.Context, id string) error {
	req := ecs.CreateDeleteDiskRequest()
	req.DiskId = id
	return c.do(ctx, op{action: "DeleteDisk", object: id, idempotent: true, ok: notFound}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.DeleteDisk(req)
		if err != nil {
			return "", "", err
		}
		return r.RequestId, "", nil
	})
}

// ResizeDisk grows a disk to sizeGiB (online when attached).
func (c *Client) ResizeDisk(ctx context.Context, id string, sizeGiB int, token string) error {
	if err := checkToken(token); err != nil {
		return err
	}
	req := ecs.CreateResizeDiskRequest()
	req.DiskId, req.NewSize, req.ClientToken, req.Type = id, requests.NewInteger(sizeGiB), token, "online"
	return c.do(ctx, op{action: "ResizeDisk", object: id, idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.ResizeDisk(req)
		if err != nil {
			return "", "", err
		}
		return r.RequestId, fmt.Sprintf("%d GiB", sizeGiB), nil
	})
}

// --- snapshots ---

// SnapshotSpec takes a snapshot of a disk.
type SnapshotSpec struct {
	Token       string
	DiskID      string
	Name        string
	Description string
	Tags        map[string]string
}

// CreateSnapshot starts a snapshot (once per Token) and returns its id;
// WaitSnapshot follows it to 100 %.
func (c *Client) CreateSnapshot(ctx context.Context, s SnapshotSpec) (string, error) {
	if err := checkToken(s.Token); err != nil {
		return "", err
	}
	req := ecs.CreateCreateSnapshotRequest()
	req.ClientToken, req.DiskId, req.SnapshotName, req.Description = s.Token, s.DiskID, s.Name, s.Description
	var tags []ecs.CreateSnapshotTag
	for _, k := range sortedTags(s.Tags) {
		tags = append(tags, ecs.CreateSnapshotTag{Key: k, Value: s.Tags[k]})
	}
	if len(tags) > 0 {
		req.Tag = &tags
	}
	var id string
	err := c.do(ctx, op{action: "CreateSnapshot", object: s.DiskID, idempotent: s.Token != ""}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.CreateSnapshot(req)
		if err != nil {
			return "", "", err
		}
		id = r.SnapshotId
		return r.RequestId, id, nil
	})
	return id, err
}

func snapshotOf(s ecs.Snapshot) Snapshot {
	p, _ := strconv.Atoi(strings.TrimSuffix(s.Progress, "%"))
	size, _ := strconv.Atoi(s.SourceDiskSize)
	t, _ := time.Parse("2006-01-02T15:04:05Z", s.CreationTime)
	return Snapshot{ID: s.SnapshotId, Name: s.SnapshotName, Status: s.Status, Progress: p, DiskID: s.SourceDiskId, DiskSizeGiB: size,
		CreatedAt: t, Tags: tagMap(s.Tags.Tag)}
}

// Snapshots lists snapshots, every page.
func (c *Client) Snapshots(ctx context.Context, f Filter) ([]Snapshot, error) {
	var out []Snapshot
	err := byToken("DescribeSnapshots", func(token string) (string, error) {
		req := ecs.CreateDescribeSnapshotsRequest()
		req.SnapshotIds, req.DiskId, req.InstanceId, req.MaxResults, req.NextToken = idList(f.IDs), f.DiskID, f.InstanceID, requests.NewInteger(100), token
		if len(f.Tags) > 0 {
			var tags []ecs.DescribeSnapshotsTag
			for _, k := range sortedTags(f.Tags) {
				tags = append(tags, ecs.DescribeSnapshotsTag{Key: k, Value: f.Tags[k]})
			}
			req.Tag = &tags
		}
		var next string
		err := c.do(ctx, op{action: "DescribeSnapshots", object: strings.Join(append(f.IDs, f.DiskID), ","), idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DescribeSnapshots(req)
			if err != nil {
				return "", "", err
			}
			for _, s := range r.Snapshots.Snapshot {
				out = append(out, snapshotOf(s))
			}
			next = r.NextToken
			return r.RequestId, fmt.Sprintf("%d snapshots", len(r.Snapshots.Snapshot)), nil
		})
		return next, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Snapshot returns one snapshot. Errors: cloud.ErrNotFound.
func (c *Client) Snapshot(ctx context.Context, id string) (Snapshot, error) {
	list, err := c.Snapshots(ctx, Filter{IDs: []string{id}})
	if err != nil {
		return Snapshot{}, err
	}
	if len(list) != 1 {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", id, cloud.ErrNotFound)
	}
	return list[0], nil
}

// WaitSnapshot follows the snapshot's Progress (reported to progress, if
// given) until it is accomplished. Errors: ErrNotFound, cloud.ErrCorrupt
// when ECS reports it failed.
func (c *Client) WaitSnapshot(ctx context.Context, id string, progress func(percent int)) (Snapshot, error) {
	var last Snapshot
	err := c.poll(ctx, func() (bool, error) {
		s, err := c.Snapshot(ctx, id)
		if err != nil {
			return false, err
		}
		if progress != nil && (s.Progress != last.Progress || last.ID == "") {
			progress(s.Progress)
		}
		last = s
		switch s.Status {
		case "accomplished":
			return true, nil
		case "failed":
			return false, fmt.Errorf("snapshot %s failed: %w", id, cloud.ErrCorrupt)
		}
		return false, nil
	})
	return last, err
}

// DeleteSnapshot deletes a snapshot (Force: disks made from it keep their
// bytes); one already gone is not an error.
func (c *Client) DeleteSnapshot(ctx context.Context, id string) error {
	req := ecs.CreateDeleteSnapshotRequest()
	req.SnapshotId, req.Force = id, requests.NewBoolean(true)
	return c.do(ctx, op{action: "DeleteSnapshot", object: id, idempotent: true, ok: notFound}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.DeleteSnapshot(req)
		if err != nil {
			return "", "", err
		}
		return r.RequestId, "", nil
	})
}

// --- images ---

// ImageSpec makes a custom image of snapshots: the system disk's first.
type ImageSpec struct {
	Token     string
	Name      string
	Snapshots []string
	Platform  string // "Debian", "Others Linux"
	BootMode  string // BIOS | UEFI
	Tags      map[string]string
}

// CreateImage makes the image (once per Token) and returns its id.
func (c *Client) CreateImage(ctx context.Context, s ImageSpec) (string, error) {
	if err := checkToken(s.Token); err != nil {
		return "", err
	}
	if len(s.Snapshots) == 0 {
		return "", fmt.Errorf("alibaba: an image needs the snapshot of its system disk: %w", cloud.ErrInvalid)
	}
	req := ecs.CreateCreateImageRequest()
	req.ClientToken, req.ImageName, req.Platform, req.BootMode, req.Architecture = s.Token, s.Name, s.Platform, s.BootMode, "x86_64"
	var maps []ecs.CreateImageDiskDeviceMapping
	for i, sn := range s.Snapshots {
		typ := "data"
		if i == 0 {
			typ = "system"
		}
		maps = append(maps, ecs.CreateImageDiskDeviceMapping{SnapshotId: sn, DiskType: typ})
	}
	req.DiskDeviceMapping = &maps
	var tags []ecs.CreateImageTag
	for _, k := range sortedTags(s.Tags) {
		tags = append(tags, ecs.CreateImageTag{Key: k, Value: s.Tags[k]})
	}
	if len(tags) > 0 {
		req.Tag = &tags
	}
	var id string
	err := c.do(ctx, op{action: "CreateImage", object: s.Name, idempotent: s.Token != ""}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.CreateImage(req)
		if err != nil {
			return "", "", err
		}
		id = r.ImageId
		return r.RequestId, id, nil
	})
	return id, err
}

// Images lists the account's own images in any state, every page.
func (c *Client) Images(ctx context.Context, f Filter) ([]Image, error) {
	var out []Image
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, errPaging("DescribeImages")
		}
		req := ecs.CreateDescribeImagesRequest()
		// ECS lists only Available images unless asked.
		req.Status, req.ImageOwnerAlias = "Creating,Waiting,Available,UnAvailable,CreateFailed", "self"
		req.ImageId, req.PageNumber, req.PageSize = strings.Join(f.IDs, ","), requests.NewInteger(page), requests.NewInteger(100)
		if len(f.Tags) > 0 {
			var tags []ecs.DescribeImagesTag
			for _, k := range sortedTags(f.Tags) {
				tags = append(tags, ecs.DescribeImagesTag{Key: k, Value: f.Tags[k]})
			}
			req.Tag = &tags
		}
		var n, total int
		err := c.do(ctx, op{action: "DescribeImages", object: strings.Join(f.IDs, ","), idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DescribeImages(req)
			if err != nil {
				return "", "", err
			}
			for _, im := range r.Images.Image {
				img := Image{ID: im.ImageId, Name: im.ImageName, Status: im.Status, Tags: tagMap(im.Tags.Tag)}
				for _, m := range im.DiskDeviceMappings.DiskDeviceMapping {
					img.Snapshots = append(img.Snapshots, m.SnapshotId)
				}
				out = append(out, img)
			}
			n, total = len(r.Images.Image), r.TotalCount
			return r.RequestId, fmt.Sprintf("%d images", n), nil
		})
		if err != nil {
			return nil, err
		}
		if n == 0 || len(out) >= total {
			return out, nil
		}
	}
}

// Image returns one image. Errors: cloud.ErrNotFound.
func (c *Client) Image(ctx context.Context, id string) (Image, error) {
	list, err := c.Images(ctx, Filter{IDs: []string{id}})
	if err != nil {
		return Image{}, err
	}
	if len(list) != 1 {
		return Image{}, fmt.Errorf("image %s: %w", id, cloud.ErrNotFound)
	}
	return list[0], nil
}

// WaitImage polls until the image is Available. Errors: ErrCorrupt when
// ECS failed to make it.
func (c *Client) WaitImage(ctx context.Context, id string) (Image, error) {
	var last Image
	err := c.poll(ctx, func() (bool, error) {
		im, err := c.Image(ctx, id)
		if err != nil {
			return false, err
		}
		last = im
		if im.Status == "CreateFailed" || im.Status == "UnAvailable" {
			return false, fmt.Errorf("image %s is %s: %w", id, im.Status, cloud.ErrCorrupt)
		}
		return im.Status == "Available", nil
	})
	return last, err
}

// DeleteImage deletes a custom image; one already gone is not an error.
func (c *Client) DeleteImage(ctx context.Context, id string) error {
	req := ecs.CreateDeleteImageRequest()
	req.ImageId, req.Force = id, requests.NewBoolean(true)
	return c.do(ctx, op{action: "DeleteImage", object: id, idempotent: true, ok: notFound}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.DeleteImage(req)
		if err != nil {
			return "", "", err
		}
		return r.RequestId, "", nil
	})
}

// --- network and region ---

// VSwitch returns one vSwitch. Errors: cloud.ErrNotFound.
func (c *Client) VSwitch(ctx context.Context, id string) (VSwitch, error) {
	req := ecs.CreateDescribeVSwitchesRequest()
	req.VSwitchId, req.PageSize = id, requests.NewInteger(50)
	var out []VSwitch
	err := c.do(ctx, op{action: "DescribeVSwitches", object: id, idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.DescribeVSwitches(req)
		if err != nil {
			return "", "", err
		}
		out = out[:0]
		for _, v := range r.VSwitches.VSwitch {
			out = append(out, VSwitch{ID: v.VSwitchId, VpcID: v.VpcId, ZoneID: v.ZoneId, CIDR: v.CidrBlock})
		}
		return r.RequestId, fmt.Sprintf("%d vSwitches", len(out)), nil
	})
	if err != nil {
		return VSwitch{}, err
	}
	for _, v := range out {
		if v.ID == id {
			return v, nil
		}
	}
	return VSwitch{}, fmt.Errorf("vSwitch %s: %w", id, cloud.ErrNotFound)
}

// VSwitches lists the vSwitches of a VPC (all of the region's, vpcID "").
func (c *Client) VSwitches(ctx context.Context, vpcID string) ([]VSwitch, error) {
	var out []VSwitch
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, errPaging("DescribeVSwitches")
		}
		req := ecs.CreateDescribeVSwitchesRequest()
		req.VpcId, req.PageNumber, req.PageSize = vpcID, requests.NewInteger(page), requests.NewInteger(50)
		var n, total int
		err := c.do(ctx, op{action: "DescribeVSwitches", object: vpcID, idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DescribeVSwitches(req)
			if err != nil {
				return "", "", err
			}
			for _, v := range r.VSwitches.VSwitch {
				out = append(out, VSwitch{ID: v.VSwitchId, VpcID: v.VpcId, ZoneID: v.ZoneId, CIDR: v.CidrBlock})
			}
			n, total = len(r.VSwitches.VSwitch), r.TotalCount
			return r.RequestId, fmt.Sprintf("%d vSwitches", n), nil
		})
		if err != nil {
			return nil, err
		}
		if n == 0 || len(out) >= total {
			return out, nil
		}
	}
}

// Regions lists the region ids ECS offers (the cheapest call that proves a
// key works).
func (c *Client) Regions(ctx context.Context) ([]string, error) {
	req := ecs.CreateDescribeRegionsRequest()
	var out []string
	err := c.do(ctx, op{action: "DescribeRegions", idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
		r, err := e.DescribeRegions(req)
		if err != nil {
			return "", "", err
		}
		out = out[:0]
		for _, reg := range r.Regions.Region {
			out = append(out, reg.RegionId)
		}
		return r.RequestId, fmt.Sprintf("%d regions", len(out)), nil
	})
	return out, err
}

// InstanceType is one ECS instance type as DescribeInstanceTypes tells it.
type InstanceType struct {
	ID, Family string
	VCPUs      int
	MemoryGiB  float64
	Arch       string // X86, ARM
	GPUs       int
}

// InstanceTypes lists the instance types of a family ("ecs.g7"; "" for
// every family) or of the named ids, following NextToken to the end.
func (c *Client) InstanceTypes(ctx context.Context, family string, ids ...string) ([]InstanceType, error) {
	var out []InstanceType
	err := byToken("DescribeInstanceTypes", func(token string) (string, error) {
		req := ecs.CreateDescribeInstanceTypesRequest()
		req.InstanceTypeFamily, req.MaxResults, req.NextToken = family, requests.NewInteger(100), token
		if len(ids) > 0 {
			list := slices.Clone(ids)
			req.InstanceTypes = &list
		}
		object := family
		if object == "" {
			object = strings.Join(ids, ",")
		}
		var next string
		err := c.do(ctx, op{action: "DescribeInstanceTypes", object: object, idempotent: true}, req, func(e *ecs.Client) (string, string, error) {
			r, err := e.DescribeInstanceTypes(req)
			if err != nil {
				return "", "", err
			}
			for _, t := range r.InstanceTypes.InstanceType {
				out = append(out, InstanceType{ID: t.InstanceTypeId, Family: t.InstanceTypeFamily, VCPUs: t.CpuCoreCount,
					MemoryGiB: t.MemorySize, Arch: t.CpuArchitecture, GPUs: t.GPUAmount})
			}
			next = r.NextToken
			return r.RequestId, fmt.Sprintf("%d instance types", len(r.InstanceTypes.InstanceType)), nil
		})
		return next, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
