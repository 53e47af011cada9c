package ecsemu

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

type instanceType struct {
	id, family string
	cpus       int
	memGiB     int
}

// instanceTypes are the x86 types of the families Ferry's assessment
// recommends (planner/assess/data/catalog.yaml), plus small burstable ones.
var instanceTypes = func() []instanceType {
	out := []instanceType{{"ecs.s6-c1m1.small", "ecs.s6", 1, 1}, {"ecs.t6-c1m1.large", "ecs.t6", 2, 2},
		{"ecs.t6-c1m2.large", "ecs.t6", 2, 4}, {"ecs.t6-c1m4.large", "ecs.t6", 2, 8}}
	sizes := []struct {
		name string
		cpus int
	}{{"large", 2}, {"xlarge", 4}, {"2xlarge", 8}, {"3xlarge", 12}, {"4xlarge", 16}, {"6xlarge", 24}, {"8xlarge", 32}, {"16xlarge", 64}}
	for _, fam := range []struct {
		name  string
		ratio int
	}{{"g6", 4}, {"c6", 2}, {"r6", 8}, {"g7", 4}, {"c7", 2}, {"r7", 8}, {"g8i", 4}, {"c8i", 2}, {"r8i", 8}} {
		for _, sz := range sizes {
			out = append(out, instanceType{"ecs." + fam.name + "." + sz.name, "ecs." + fam.name, sz.cpus, sz.cpus * fam.ratio})
		}
	}
	return out
}()

func findType(id string) *instanceType {
	for i := range instanceTypes {
		if instanceTypes[i].id == id {
			return &instanceTypes[i]
		}
	}
	return nil
}

func init() {
	register(&action{name: "RunInstances", write: true, dryRun: true,
		params: []string{"ImageId", "InstanceType", "SecurityGroupId", "SecurityGroupIds.N", "VSwitchId", "ZoneId", "InstanceName",
			"HostName", "Description", "UserData", "Amount", "MinAmount", "ClientToken", "InternetChargeType", "InternetMaxBandwidthOut",
			"InstanceChargeType", "SystemDisk.Category", "SystemDisk.Size", "SystemDisk.DiskName", "SystemDisk.Description",
			"SystemDisk.PerformanceLevel", "DataDisk.N.Size", "DataDisk.N.Category", "DataDisk.N.SnapshotId", "DataDisk.N.DiskName",
			"DataDisk.N.Description", "DataDisk.N.DeleteWithInstance", "DataDisk.N.PerformanceLevel", "Tag.N.Key", "Tag.N.Value",
			"UniqueSuffix", "SecurityEnhancementStrategy", "IoOptimized", "DeletionProtection", "PrivateIpAddress", "ResourceGroupId",
			"CreditSpecification", "KeyPairName", "Password", "PasswordInherit"},
		run: runInstances})
	register(&action{name: "DescribeInstances", dryRun: true,
		params: []string{"InstanceIds", "VpcId", "VSwitchId", "ZoneId", "InstanceName", "Status", "ImageId", "SecurityGroupId",
			"InstanceType", "InstanceTypeFamily", "PrivateIpAddresses", "InstanceNetworkType", "InstanceChargeType", "PageNumber",
			"PageSize", "NextToken", "MaxResults", "Tag.N.Key", "Tag.N.Value", "ResourceGroupId", "KeyPairName", "LockReason",
			"AdditionalAttributes.N", "NeedSaleCycle", "DeviceAvailable", "IoOptimized"},
		run: describeInstances})
	register(&action{name: "StartInstance", write: true, dryRun: true, params: []string{"InstanceId", "InitLocalDisk"}, run: startInstance})
	register(&action{name: "StopInstance", write: true, dryRun: true,
		params: []string{"InstanceId", "ForceStop", "ConfirmStop", "StoppedMode", "Hibernate"}, run: stopInstance})
	register(&action{name: "DeleteInstance", write: true, dryRun: true,
		params: []string{"InstanceId", "Force", "TerminateSubscription"}, run: deleteInstance})
	register(&action{name: "GetInstanceConsoleOutput", params: []string{"InstanceId", "RemoveSymbols"}, run: consoleOutput})
	register(&action{name: "DescribeUserData", params: []string{"InstanceId"}, run: describeUserData})
	register(&action{name: "DescribeInstanceTypes",
		params: []string{"InstanceTypes.N", "InstanceTypeFamily", "MaxResults", "NextToken"}, run: describeInstanceTypes})
	register(&action{name: "DescribeAccountAttributes", params: []string{"AttributeName.N", "ZoneId"}, run: describeAccountAttributes})
}

// maxUserData is ECS's limit on UserData before its Base64 encoding.
const maxUserData = 32 << 10

func runInstances(c *call) (obj, error) {
	imgID, err := c.required("ImageId")
	if err != nil {
		return nil, err
	}
	typeID, err := c.required("InstanceType")
	if err != nil {
		return nil, err
	}
	swID, err := c.required("VSwitchId")
	if err != nil {
		return nil, err
	}
	groups := c.repeated("SecurityGroupIds")
	if one := c.str("SecurityGroupId"); one != "" {
		groups = append([]string{one}, groups...)
	}
	if len(groups) == 0 {
		return nil, errMissing("SecurityGroupId")
	}
	if t := c.str("InstanceChargeType"); t != "" && t != "PostPaid" {
		return nil, newErr(400, "InvalidInstanceChargeType.ValueNotSupported", "The emulated account runs pay-as-you-go (PostPaid) instances only.")
	}
	im := c.s.st.Images[imgID]
	if im == nil {
		return nil, errImageNotFound
	}
	if im.Status != "Available" {
		return nil, errImageStatus
	}
	it := findType(typeID)
	if it == nil {
		return nil, errInstanceType
	}
	sw := c.s.st.VSwitches[swID]
	if sw == nil {
		return nil, errVSwitchNotFound
	}
	if z := c.str("ZoneId"); z != "" && z != sw.ZoneID {
		return nil, newErr(400, "InvalidVSwitchId.NotFoundInZone", "The specified VSwitch does not exist in the specified zone.")
	}
	for _, g := range groups {
		sg := c.s.st.SecurityGroups[g]
		if sg == nil {
			return nil, errSGNotFound
		}
		if sg.VpcID != sw.VpcID {
			return nil, newErr(403, "InvalidSecurityGroup.VpcMismatch", "The specified security group and the specified vSwitch are not in the same VPC.")
		}
	}
	name, host, desc := c.str("InstanceName"), c.str("HostName"), c.str("Description")
	if !nameOK(name) {
		return nil, newErr(400, "InvalidInstanceName.Malformed", "The specified parameter InstanceName is not valid.")
	}
	if !descriptionOK(desc) {
		return nil, newErr(400, "InvalidDescription.Malformed", "The specified description is wrongly formed.")
	}
	ud := c.str("UserData")
	if ud != "" {
		raw, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return nil, errUserData
		}
		if len(raw) > maxUserData {
			return nil, errUserDataSize
		}
	}
	amount, err := c.integer("Amount", 1, 1, 100)
	if err != nil {
		return nil, errAmount
	}
	minAmount, err := c.integer("MinAmount", amount, 1, amount)
	if err != nil {
		return nil, errAmount
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	sysCat := c.str("SystemDisk.Category")
	if sysCat == "" {
		sysCat = "cloud_efficiency"
	}
	if _, ok := diskSizeRange[sysCat]; !ok {
		return nil, newErr(400, "InvalidSystemDiskCategory.ValueNotSupported", "The specified parameter \"SystemDisk.Category\" is not valid.")
	}
	sysSize := im.Disks[0].SizeGiB
	if c.has("SystemDisk.Size") {
		n, err := c.integer("SystemDisk.Size", 0, 20, 2048)
		if err != nil {
			return nil, newErr(400, "InvalidSystemDiskSize.ValueNotSupported", "The specified parameter SystemDisk.Size is invalid.")
		}
		if n < sysSize {
			return nil, newErr(400, "InvalidSystemDiskSize.LessThanImageSize", "The specified parameter SystemDisk.Size is less than the image size.")
		}
		sysSize = n
	}
	type dataSpec struct {
		size     int
		cat      string
		snap     *snapshot
		name     string
		dwi      bool
		fromIm   bool
		mapIndex int
	}
	var data []dataSpec
	for i, m := range im.Disks[1:] {
		data = append(data, dataSpec{size: m.SizeGiB, cat: "cloud_efficiency", snap: c.s.st.Snapshots[m.SnapshotID], dwi: true, fromIm: true, mapIndex: i + 1})
	}
	for _, n := range c.indexed("DataDisk") {
		p := fmt.Sprintf("DataDisk.%d.", n)
		ds := dataSpec{cat: c.str(p + "Category"), name: c.str(p + "DiskName"), dwi: true}
		if ds.cat == "" {
			ds.cat = "cloud_efficiency"
		}
		rng, ok := diskSizeRange[ds.cat]
		if !ok {
			return nil, newErr(400, "InvalidDataDiskCategory.ValueNotSupported", "The specified parameter DataDisk.n.Category is not valid.")
		}
		if ds.dwi, err = c.boolean(p+"DeleteWithInstance", true); err != nil {
			return nil, err
		}
		if id := c.str(p + "SnapshotId"); id != "" {
			if ds.snap = c.s.st.Snapshots[id]; ds.snap == nil {
				return nil, errSnapshotNotFound
			}
			if ds.snap.Status != "accomplished" {
				return nil, errSnapshotNotReady
			}
			ds.size = ds.snap.DiskSizeGiB
		}
		if c.has(p + "Size") {
			if ds.size, err = c.integer(p+"Size", 0, rng[0], rng[1]); err != nil || (ds.snap != nil && ds.size < ds.snap.DiskSizeGiB) {
				return nil, errDiskSize
			}
		} else if ds.snap == nil {
			return nil, errMissing(p + "Size")
		}
		data = append(data, ds)
	}
	if len(data) > 16 {
		return nil, errDiskLimit
	}
	live := len(c.s.st.Instances)
	if live+minAmount > c.s.opt.Quota.Instances {
		return nil, errInstanceQuota
	}
	amount = min(amount, c.s.opt.Quota.Instances-live)
	if len(c.s.st.Disks)+amount*(1+len(data)) > c.s.opt.Quota.Disks {
		return nil, errDiskQuota
	}
	if c.dry {
		return nil, nil
	}
	kind := "process"
	if im.Owner == "self" {
		kind = "vm"
	}
	var ids []string
	for range amount {
		in := &instance{Seq: c.s.nextSeq(), ID: c.s.newID("i"), Name: name, Description: desc, Type: it.id, ImageID: im.ID,
			ZoneID: sw.ZoneID, VpcID: sw.VpcID, VSwitchID: sw.ID, SecurityGroupIDs: groups, UserData: ud, Tags: tags,
			Status: "Pending", Since: c.now, CreatedAt: c.now, Kind: kind}
		if in.Name == "" {
			in.Name = in.ID
		}
		in.HostName = host
		if in.HostName == "" {
			in.HostName = "iZ" + in.ID[2:] + "Z"
		}
		n := c.s.freeAddr()
		in.PrivateIP, in.BindIP = addrIn("127.16.0.1", n), addrIn("127.32.0.1", n)
		c.s.st.Instances[in.ID] = in
		sys := &disk{Seq: c.s.nextSeq(), ID: c.s.newID("d"), Name: c.str("SystemDisk.DiskName"), Description: c.str("SystemDisk.Description"),
			Category: sysCat, SizeGiB: sysSize, ZoneID: sw.ZoneID, Type: "system", Status: "In_use", Since: c.now, InstanceID: in.ID,
			Device: "/dev/xvda", DeleteWithInstance: true, EverAttached: true, CreatedAt: c.now, AttachedAt: c.now}
		var sysSnap *snapshot
		if im.Owner == "self" {
			sysSnap = c.s.st.Snapshots[im.Disks[0].SnapshotID]
			if sysSnap == nil {
				return nil, newErr(403, "InvalidImage.SnapshotMissing", "The snapshot of the image's system disk no longer exists.")
			}
			sys.SourceSnapshotID = sysSnap.ID
		}
		c.s.st.Disks[sys.ID] = sys
		if err := c.s.makeDiskFile(c, sys, sysSnap); err != nil {
			return nil, err
		}
		in.SystemDiskID = sys.ID
		for i, ds := range data {
			d := &disk{Seq: c.s.nextSeq(), ID: c.s.newID("d"), Name: ds.name, Category: ds.cat, SizeGiB: ds.size, ZoneID: sw.ZoneID,
				Type: "data", Status: "In_use", Since: c.now, InstanceID: in.ID, Device: "/dev/xvd" + string(rune('b'+i)),
				DeleteWithInstance: ds.dwi, EverAttached: true, CreatedAt: c.now, AttachedAt: c.now}
			if ds.snap != nil {
				d.SourceSnapshotID = ds.snap.ID
			}
			c.s.st.Disks[d.ID] = d
			if err := c.s.makeDiskFile(c, d, ds.snap); err != nil {
				return nil, err
			}
		}
		ids = append(ids, in.ID)
	}
	return obj{"InstanceIdSets": obj{"InstanceIdSet": ids}, "OrderId": "", "TradePrice": 0}, nil
}

// addrIn returns base + n.
// freeAddr numbers a new instance's addresses: a random slot of the
// default vSwitch (127.16.0.0/16) that no instance of this emulator holds,
// so that emulators running side by side on one host (tests in parallel,
// a trial next to them) rarely pick the same loopback address and port.
func (s *Server) freeAddr() int {
	used := map[string]bool{}
	for _, in := range s.st.Instances {
		used[in.PrivateIP] = true
	}
	for {
		n := 1 + rand.IntN(65533)
		if !used[addrIn("127.16.0.1", n)] {
			return n
		}
	}
}

func addrIn(base string, n int) string {
	a := netip.MustParseAddr(base).As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

func (s *Server) advanceInstance(in *instance, now time.Time) bool {
	el := now.Sub(in.Since)
	if !now.After(in.Since) {
		return false
	}
	switch in.Status {
	case "Pending":
		for _, d := range s.st.Disks {
			if d.InstanceID == in.ID && !d.DataReady {
				return false
			}
		}
		if el < s.timing.InstancePending {
			return false
		}
		in.Status, in.Since, in.RuntimeUp, in.RuntimeErr = "Starting", now, false, ""
		s.rt.start(in)
	case "Starting":
		switch {
		case in.RuntimeErr != "":
			s.opt.Logf("ecsemu: instance %s did not start: %s", in.ID, in.RuntimeErr)
			in.Status, in.Since = "Stopped", now
		case in.RuntimeUp && el >= s.timing.InstanceStarting:
			in.Status, in.Since, in.StartedAt = "Running", now, now
		default:
			return false
		}
	case "Stopping":
		if in.RuntimeUp || el < s.timing.InstanceStopping {
			return false
		}
		in.Status, in.Since = "Stopped", now
	default:
		return false
	}
	return true
}

func (c *call) instance() (*instance, error) {
	id, err := c.required("InstanceId")
	if err != nil {
		return nil, err
	}
	in := c.s.st.Instances[id]
	if in == nil {
		return nil, errInstanceNotFound
	}
	return in, nil
}

func startInstance(c *call) (obj, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	if _, err := c.boolean("InitLocalDisk", false); err != nil {
		return nil, err
	}
	if in.Status != "Stopped" {
		return nil, errInstanceStatus
	}
	if c.dry {
		return nil, nil
	}
	in.Status, in.Since, in.RuntimeUp, in.RuntimeErr = "Starting", c.now, false, ""
	c.s.rt.start(in)
	return obj{}, nil
}

func stopInstance(c *call) (obj, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	for _, b := range []string{"ForceStop", "ConfirmStop", "Hibernate"} {
		if _, err := c.boolean(b, false); err != nil {
			return nil, err
		}
	}
	if m := c.str("StoppedMode"); m != "" && m != "StopCharging" && m != "KeepCharging" {
		return nil, errInvalid("StoppedMode")
	}
	if in.Status != "Running" {
		return nil, errInstanceStatus
	}
	if c.dry {
		return nil, nil
	}
	in.Status, in.Since = "Stopping", c.now
	c.s.rt.stop(in)
	return obj{}, nil
}

func deleteInstance(c *call) (obj, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	force, err := c.boolean("Force", false)
	if err != nil {
		return nil, err
	}
	if _, err := c.boolean("TerminateSubscription", false); err != nil {
		return nil, err
	}
	if in.Status != "Stopped" && !force {
		return nil, errInstanceStatus
	}
	if c.dry {
		return nil, nil
	}
	c.s.rt.remove(in)
	for _, d := range c.s.st.Disks {
		if d.InstanceID != in.ID {
			continue
		}
		if d.DeleteWithInstance || d.Type == "system" {
			c.s.removeDisk(d)
		} else {
			d.Status, d.Since, d.InstanceID, d.Device, d.DetachedAt = "Available", c.now, "", "", c.now
		}
	}
	delete(c.s.st.Instances, in.ID)
	return obj{}, nil
}

func describeInstances(c *call) (obj, error) {
	ids, err := c.list("InstanceIds", 100)
	if err != nil {
		return nil, err
	}
	ips, err := c.list("PrivateIpAddresses", 100)
	if err != nil {
		return nil, err
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	vpcID, swID, zone, name, status, img, sg, typ := c.str("VpcId"), c.str("VSwitchId"), c.str("ZoneId"), c.str("InstanceName"),
		c.str("Status"), c.str("ImageId"), c.str("SecurityGroupId"), c.str("InstanceType")
	switch status {
	case "", "Pending", "Starting", "Running", "Stopping", "Stopped":
	default:
		return nil, errInvalid("Status")
	}
	if c.dry {
		return nil, nil
	}
	items := newestFirst(c.s.st.Instances, func(in *instance) int64 { return in.Seq }, func(in *instance) bool {
		return (len(ids) == 0 || containsFold(ids, in.ID)) && (len(ips) == 0 || containsFold(ips, in.PrivateIP)) &&
			(vpcID == "" || in.VpcID == vpcID) && (swID == "" || in.VSwitchID == swID) && (zone == "" || in.ZoneID == zone) &&
			(name == "" || wildcard(name, in.Name)) && (status == "" || in.Status == status) && (img == "" || in.ImageID == img) &&
			(sg == "" || containsFold(in.SecurityGroupIDs, sg)) && (typ == "" || in.Type == typ) && tagFilter(in.Tags, tags)
	})
	pg, fields, err := paginate(c, items, func(in *instance) int64 { return in.Seq }, 100, true)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(pg))
	for _, in := range pg {
		list = append(list, c.s.instanceJSON(in))
	}
	fields["Instances"] = obj{"Instance": list}
	return fields, nil
}

func (s *Server) instanceJSON(in *instance) obj {
	it := findType(in.Type)
	osName := ""
	if im := s.st.Images[in.ImageID]; im != nil {
		osName = im.OSName
	}
	minute := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04Z")
	}
	return obj{"InstanceId": in.ID, "InstanceName": in.Name, "HostName": in.HostName, "Description": in.Description,
		"Status": in.Status, "InstanceType": in.Type, "InstanceTypeFamily": it.family, "Cpu": it.cpus, "Memory": it.memGiB * 1024,
		"ImageId": in.ImageID, "OSType": "linux", "OSName": osName, "OSNameEn": osName, "RegionId": s.opt.Region, "ZoneId": in.ZoneID,
		"CreationTime": minute(in.CreatedAt), "StartTime": minute(in.StartedAt), "ExpiredTime": "2099-12-31T15:59Z",
		"InstanceChargeType": "PostPaid", "InternetChargeType": "PayByTraffic", "InternetMaxBandwidthOut": 0,
		"InstanceNetworkType": "vpc", "IoOptimized": true, "DeletionProtection": false, "StoppedMode": "Not-applicable",
		"DeviceAvailable": true, "SerialNumber": in.ID[2:], "Recyclable": false, "GPUAmount": 0, "CreditSpecification": "",
		"VpcAttributes": obj{"VpcId": in.VpcID, "VSwitchId": in.VSwitchID, "NatIpAddress": "",
			"PrivateIpAddress": obj{"IpAddress": []string{in.PrivateIP}}},
		"SecurityGroupIds": obj{"SecurityGroupId": in.SecurityGroupIDs},
		"PublicIpAddress":  obj{"IpAddress": []string{}}, "InnerIpAddress": obj{"IpAddress": []string{}},
		"EipAddress": obj{"AllocationId": "", "IpAddress": "", "InternetChargeType": ""},
		"NetworkInterfaces": obj{"NetworkInterface": []obj{{"NetworkInterfaceId": "eni-" + in.ID[2:], "PrimaryIpAddress": in.PrivateIP,
			"MacAddress": macOf(in.ID), "Type": "Primary"}}},
		"Tags": tagsJSON(in.Tags), "OperationLocks": obj{"LockReason": []obj{}}}
}

func macOf(id string) string {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return fmt.Sprintf("00:16:3e:%02x:%02x:%02x", byte(h>>16), byte(h>>8), byte(h))
}

func consoleOutput(c *call) (obj, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	path := c.s.rt.consolePath(in)
	b, _ := os.ReadFile(path)
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	updated := ""
	if fi, err := os.Stat(path); err == nil {
		updated = ecsTime(fi.ModTime())
	}
	return obj{"InstanceId": in.ID, "ConsoleOutput": base64.StdEncoding.EncodeToString(b), "LastUpdateTime": updated}, nil
}

func describeUserData(c *call) (obj, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	return obj{"InstanceId": in.ID, "RegionId": c.s.opt.Region, "UserData": in.UserData}, nil
}

func describeInstanceTypes(c *call) (obj, error) {
	want := c.repeated("InstanceTypes")
	fam := c.str("InstanceTypeFamily")
	n, err := c.integer("MaxResults", 100, 1, 1600)
	if err != nil {
		return nil, err
	}
	start := 0
	if t := c.str("NextToken"); t != "" {
		if start, err = strconv.Atoi(strings.TrimPrefix(t, "ecsemu-types:")); err != nil || start < 0 {
			return nil, errNextToken
		}
	}
	var match []instanceType
	for _, it := range instanceTypes {
		if (len(want) == 0 || containsFold(want, it.id)) && (fam == "" || it.family == fam) {
			match = append(match, it)
		}
	}
	start = min(start, len(match))
	end := min(start+n, len(match))
	list := make([]obj, 0, end-start)
	for _, it := range match[start:end] {
		list = append(list, obj{"InstanceTypeId": it.id, "InstanceTypeFamily": it.family, "CpuCoreCount": it.cpus,
			"MemorySize": float64(it.memGiB), "CpuArchitecture": "X86", "InstanceCategory": "General-purpose", "EniQuantity": 2,
			"DiskQuantity": 17, "LocalStorageCategory": ""})
	}
	next := ""
	if end < len(match) {
		next = fmt.Sprintf("ecsemu-types:%d", end)
	}
	return obj{"InstanceTypes": obj{"InstanceType": list}, "NextToken": next}, nil
}

func describeAccountAttributes(c *call) (obj, error) {
	want := c.repeated("AttributeName")
	vcpus := 0
	for _, in := range c.s.st.Instances {
		vcpus += findType(in.Type).cpus
	}
	all := []struct {
		name, value string
	}{
		{"max-security-groups", "100"}, {"instance-network-type", "vpc"},
		{"max-postpaid-instance-vcpu-count", strconv.Itoa(c.s.opt.Quota.Instances * 8)},
		{"used-postpaid-instance-vcpu-count", strconv.Itoa(vcpus)},
		{"max-postpaid-yundisk-capacity", "204800"}, {"max-axt-command-count", "500"},
	}
	var items []obj
	for _, a := range all {
		if len(want) > 0 && !containsFold(want, a.name) {
			continue
		}
		items = append(items, obj{"AttributeName": a.name, "AttributeValues": obj{"ValueItem": []obj{{"Value": a.value, "Count": 1}}}})
	}
	sort.Slice(items, func(i, j int) bool { return items[i]["AttributeName"].(string) < items[j]["AttributeName"].(string) })
	return obj{"AccountAttributeItems": obj{"AccountAttributeItem": items}}, nil
}
