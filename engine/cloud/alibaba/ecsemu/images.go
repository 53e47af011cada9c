package ecsemu

import (
	"fmt"
	"strconv"
	"strings"
)

// publicImages are the system images every account sees. An instance of
// one runs its user data as a shell script on the emulator's host (the
// stand-in for cloud-init on a Linux image).
var publicImages = []image{
	{ID: "debian_12_6_x64_20G_alibase_20240819.vhd", Name: "debian_12_6_x64_20G_alibase_20240819.vhd", Platform: "Debian",
		OSName: "Debian  12.6 64位", Architecture: "x86_64", BootMode: "BIOS", Disks: []imageDisk{{SizeGiB: 20, Device: "/dev/xvda", Type: "system"}}},
	{ID: "ubuntu_22_04_x64_20G_alibase_20240819.vhd", Name: "ubuntu_22_04_x64_20G_alibase_20240819.vhd", Platform: "Ubuntu",
		OSName: "Ubuntu  22.04 64位", Architecture: "x86_64", BootMode: "BIOS", Disks: []imageDisk{{SizeGiB: 20, Device: "/dev/xvda", Type: "system"}}},
	{ID: "aliyun_3_x64_20G_alibase_20240819.vhd", Name: "aliyun_3_x64_20G_alibase_20240819.vhd", Platform: "Aliyun",
		OSName: "Alibaba Cloud Linux  3.2104 LTS 64位", Architecture: "x86_64", BootMode: "UEFI-Preferred", Disks: []imageDisk{{SizeGiB: 20, Device: "/dev/xvda", Type: "system"}}},
}

var platforms = []string{"Aliyun", "Anolis", "CentOS", "Ubuntu", "CoreOS", "SUSE", "Debian", "OpenSUSE", "FreeBSD", "RedHat",
	"Kylin", "UOS", "Fedora", "Fedora CoreOS", "CentOS Stream", "AlmaLinux", "Rocky Linux", "Gentoo", "Customized Linux", "Others Linux"}

func init() {
	register(&action{name: "CreateImage", write: true,
		params: []string{"SnapshotId", "ImageName", "Description", "Platform", "Architecture", "BootMode", "ClientToken", "ImageFamily",
			"ImageVersion", "ResourceGroupId", "DetectionStrategy", "Tag.N.Key", "Tag.N.Value", "DiskDeviceMapping.N.SnapshotId",
			"DiskDeviceMapping.N.Size", "DiskDeviceMapping.N.Device", "DiskDeviceMapping.N.DiskType"},
		run: createImage})
	register(&action{name: "DescribeImages", dryRun: true,
		params: []string{"ImageId", "ImageName", "ImageOwnerAlias", "Status", "SnapshotId", "Architecture", "OSType", "IsPublic", "Usage",
			"PageNumber", "PageSize", "ShowExpired", "ActionType", "InstanceType", "ImageFamily", "Tag.N.Key", "Tag.N.Value",
			"ResourceGroupId", "Filter.N.Key", "Filter.N.Value", "IsSupportIoOptimized", "IsSupportCloudinit", "ImageOwnerId"},
		run: describeImages})
	register(&action{name: "DeleteImage", write: true, params: []string{"ImageId", "Force"}, run: deleteImage})
}

func createImage(c *call) (obj, error) {
	name, desc := c.str("ImageName"), c.str("Description")
	if !nameOK(name) || strings.HasPrefix(name, "acs:") || strings.HasPrefix(name, "aliyun") {
		return nil, newErr(400, "InvalidImageName.Malformed", "The specified Image name is wrongly formed.")
	}
	if !descriptionOK(desc) {
		return nil, newErr(400, "InvalidDescription.Malformed", "The specified description is wrongly formed.")
	}
	platform := c.str("Platform")
	if platform == "" {
		platform = "Others Linux"
	} else if !containsFold(platforms, platform) {
		return nil, errInvalid("Platform")
	}
	arch := c.str("Architecture")
	switch arch {
	case "":
		arch = "x86_64"
	case "x86_64", "i386", "arm64":
	default:
		return nil, errInvalid("Architecture")
	}
	boot := c.str("BootMode")
	switch boot {
	case "":
		boot = "UEFI-Preferred"
	case "BIOS", "UEFI", "UEFI-Preferred":
	default:
		return nil, errInvalid("BootMode")
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	var disks []imageDisk
	if id := c.str("SnapshotId"); id != "" && len(c.indexed("DiskDeviceMapping")) == 0 {
		disks = append(disks, imageDisk{SnapshotID: id, Device: "/dev/xvda", Type: "system"})
	}
	for i, n := range c.indexed("DiskDeviceMapping") {
		p := fmt.Sprintf("DiskDeviceMapping.%d.", n)
		m := imageDisk{SnapshotID: c.str(p + "SnapshotId"), Device: c.str(p + "Device"), Type: c.str(p + "DiskType")}
		if m.Type == "" {
			m.Type = "data"
			if i == 0 {
				m.Type = "system"
			}
		}
		if m.Type != "system" && m.Type != "data" {
			return nil, errInvalid(p + "DiskType")
		}
		if c.has(p + "Size") {
			if m.SizeGiB, err = c.integer(p+"Size", 0, 1, 32768); err != nil {
				return nil, err
			}
		}
		disks = append(disks, m)
	}
	if len(disks) == 0 {
		return nil, newErr(400, "InvalidParameter.Snapshot", "A snapshot of a system disk (SnapshotId or DiskDeviceMapping.N.SnapshotId) is required.")
	}
	systems := 0
	for i := range disks {
		m := &disks[i]
		if m.Type == "system" {
			systems++
		}
		if m.SnapshotID == "" {
			return nil, newErr(400, "InvalidParameter.DiskDeviceMapping", "The emulator makes images of snapshots only: DiskDeviceMapping.N.SnapshotId is required.")
		}
		sn := c.s.st.Snapshots[m.SnapshotID]
		if sn == nil {
			return nil, errSnapshotNotFound
		}
		if sn.Status != "accomplished" {
			return nil, errSnapshotNotReady
		}
		if m.SizeGiB == 0 {
			m.SizeGiB = sn.DiskSizeGiB
		}
		if m.SizeGiB < sn.DiskSizeGiB {
			return nil, errDiskSize
		}
		if m.Device == "" {
			m.Device = "/dev/xvd" + string(rune('a'+i))
		}
	}
	if systems != 1 {
		return nil, newErr(400, "InvalidParameter.DiskDeviceMapping", "An image has exactly one system disk.")
	}
	for _, im := range c.s.st.Images {
		if name != "" && im.Name == name {
			return nil, newErr(400, "InvalidImageName.Duplicated", "The specified image name is already in use.")
		}
	}
	im := &image{Seq: c.s.nextSeq(), ID: c.s.newID("m"), Name: name, Description: desc, Platform: platform, OSName: platform,
		Architecture: arch, BootMode: boot, Owner: "self", Status: "Creating", Since: c.now, Disks: disks, Tags: tags, CreatedAt: c.now}
	c.s.st.Images[im.ID] = im
	return obj{"ImageId": im.ID}, nil
}

func describeImages(c *call) (obj, error) {
	var ids []string
	if v := c.str("ImageId"); v != "" {
		ids = strings.Split(v, ",")
		if len(ids) > 100 {
			return nil, errInvalid("ImageId")
		}
	}
	// ECS lists Available images unless asked for other states.
	statuses := []string{"Available"}
	if v := c.str("Status"); v != "" {
		statuses = strings.Split(v, ",")
		for _, st := range statuses {
			switch st {
			case "Creating", "Waiting", "Available", "UnAvailable", "CreateFailed", "Deprecated":
			default:
				return nil, errInvalid("Status")
			}
		}
	}
	var owners []string
	if v := c.str("ImageOwnerAlias"); v != "" {
		owners = strings.Split(v, ",")
		for _, o := range owners {
			if o != "system" && o != "self" && o != "others" && o != "marketplace" {
				return nil, errInvalid("ImageOwnerAlias")
			}
		}
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	name, snap, arch := c.str("ImageName"), c.str("SnapshotId"), c.str("Architecture")
	if c.dry {
		return nil, nil
	}
	items := newestFirst(c.s.st.Images, func(im *image) int64 { return im.Seq }, func(im *image) bool {
		hasSnap := snap == ""
		for _, m := range im.Disks {
			if m.SnapshotID == snap {
				hasSnap = true
			}
		}
		return (len(ids) == 0 || containsFold(ids, im.ID)) && containsFold(statuses, im.Status) &&
			(len(owners) == 0 || containsFold(owners, im.Owner)) && (name == "" || wildcard(name, im.Name)) &&
			(arch == "" || im.Architecture == arch) && hasSnap && tagFilter(im.Tags, tags)
	})
	pg, fields, err := paginate(c, items, func(im *image) int64 { return im.Seq }, 100, false)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(pg))
	for _, im := range pg {
		list = append(list, c.s.imageJSON(im))
	}
	fields["Images"] = obj{"Image": list}
	fields["RegionId"] = c.s.opt.Region
	return fields, nil
}

func (s *Server) imageJSON(im *image) obj {
	progress := "100%"
	if im.Status == "Creating" {
		progress = "0%"
		if s.timing.Image > 0 {
			progress = strconv.Itoa(min(99, int(100*s.opt.Now().Sub(im.Since)/s.timing.Image))) + "%"
		}
	}
	maps := make([]obj, 0, len(im.Disks))
	for _, m := range im.Disks {
		maps = append(maps, obj{"SnapshotId": m.SnapshotID, "Size": strconv.Itoa(m.SizeGiB), "Device": m.Device, "Type": m.Type,
			"Format": "", "Progress": progress})
	}
	usage := "none"
	for _, in := range s.st.Instances {
		if in.ImageID == im.ID {
			usage = "instance"
		}
	}
	return obj{"ImageId": im.ID, "ImageName": im.Name, "Description": im.Description, "Status": im.Status, "Progress": progress,
		"ImageOwnerAlias": im.Owner, "IsPublic": im.Owner == "system", "OSType": "linux", "OSName": im.OSName, "OSNameEn": im.OSName,
		"Platform": im.Platform, "Architecture": im.Architecture, "BootMode": im.BootMode, "Size": im.Disks[0].SizeGiB,
		"CreationTime": ecsTime(im.CreatedAt), "Usage": usage, "IsSupportCloudinit": true, "IsSupportIoOptimized": true,
		"IsSelfShared": "", "ImageVersion": "", "ImageFamily": "",
		"DiskDeviceMappings": obj{"DiskDeviceMapping": maps}, "Tags": tagsJSON(im.Tags)}
}

func deleteImage(c *call) (obj, error) {
	id, err := c.required("ImageId")
	if err != nil {
		return nil, err
	}
	if _, err := c.boolean("Force", false); err != nil {
		return nil, err
	}
	im := c.s.st.Images[id]
	if im == nil || im.Owner != "self" {
		return nil, errImageNotFound
	}
	delete(c.s.st.Images, id)
	return obj{}, nil
}
