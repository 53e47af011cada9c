package ecsemu

import (
	"fmt"
	"os"
	"time"
)

const gib = 1 << 30

// diskCategories and their size ranges in GiB, as ECS documents them.
var diskCategories = []string{"cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd", "cloud_auto"}

var diskSizeRange = map[string][2]int{
	"cloud": {5, 2000}, "cloud_efficiency": {20, 32768}, "cloud_ssd": {20, 32768}, "cloud_essd": {20, 65536}, "cloud_auto": {1, 65536},
}

func init() {
	register(&action{name: "CreateDisk", write: true,
		params: []string{"ZoneId", "DiskCategory", "Size", "SnapshotId", "DiskName", "Description", "ClientToken", "PerformanceLevel",
			"Encrypted", "ResourceGroupId", "Tag.N.Key", "Tag.N.Value"},
		run: createDisk})
	register(&action{name: "AttachDisk", write: true,
		params: []string{"DiskId", "InstanceId", "Device", "DeleteWithInstance", "Bootable"}, run: attachDisk})
	register(&action{name: "DetachDisk", write: true, params: []string{"DiskId", "InstanceId", "DeleteWithInstance"}, run: detachDisk})
	register(&action{name: "DeleteDisk", write: true, params: []string{"DiskId"}, run: deleteDisk})
	register(&action{name: "ResizeDisk", write: true, params: []string{"DiskId", "NewSize", "Type", "ClientToken"}, run: resizeDisk})
	register(&action{name: "DescribeDisks", dryRun: true,
		params: []string{"DiskIds", "InstanceId", "ZoneId", "DiskType", "Category", "Status", "SnapshotId", "DiskName", "Portable",
			"DeleteWithInstance", "PageNumber", "PageSize", "NextToken", "MaxResults", "Tag.N.Key", "Tag.N.Value", "ResourceGroupId",
			"Encrypted", "AdditionalAttributes.N"},
		run: describeDisks})
}

func createDisk(c *call) (obj, error) {
	zone := c.str("ZoneId")
	if zone == "" {
		return nil, errMissing("ZoneId")
	}
	if zone != c.s.opt.Zone {
		return nil, errZoneNotFound
	}
	cat := c.str("DiskCategory")
	if cat == "" {
		cat = "cloud"
	}
	rng, ok := diskSizeRange[cat]
	if !ok {
		return nil, errDiskCategory
	}
	if enc, err := c.boolean("Encrypted", false); err != nil || enc {
		return nil, newErr(403, "InvalidParameter.Encrypted", "The emulated account has no KMS key for encrypted disks.")
	}
	name, desc := c.str("DiskName"), c.str("Description")
	if !nameOK(name) {
		return nil, newErr(400, "InvalidDiskName.Malformed", "The specified disk name is wrongly formed.")
	}
	if !descriptionOK(desc) {
		return nil, newErr(400, "InvalidDescription.Malformed", "The specified description is wrongly formed.")
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	var src *snapshot
	if id := c.str("SnapshotId"); id != "" {
		if src = c.s.st.Snapshots[id]; src == nil {
			return nil, errSnapshotNotFound
		}
		if src.Status != "accomplished" {
			return nil, errSnapshotNotReady
		}
	}
	size := 0
	if c.has("Size") {
		if size, err = c.integer("Size", 0, rng[0], rng[1]); err != nil {
			return nil, errDiskSize
		}
	} else if src == nil {
		return nil, errMissing("Size")
	}
	if src != nil {
		if size == 0 {
			size = src.DiskSizeGiB
		}
		if size < src.DiskSizeGiB {
			return nil, errDiskSize
		}
	}
	if len(c.s.st.Disks) >= c.s.opt.Quota.Disks {
		return nil, errDiskQuota
	}
	d := &disk{Seq: c.s.nextSeq(), ID: c.s.newID("d"), Name: name, Description: desc, Category: cat, SizeGiB: size, ZoneID: zone,
		Type: "data", Status: "Creating", Since: c.now, Tags: tags, CreatedAt: c.now}
	if src != nil {
		d.SourceSnapshotID = src.ID
	}
	c.s.st.Disks[d.ID] = d
	if err := c.s.makeDiskFile(c, d, src); err != nil {
		delete(c.s.st.Disks, d.ID)
		return nil, err
	}
	return obj{"DiskId": d.ID, "OrderId": ""}, nil
}

// makeDiskFile gives d its sparse file: empty at once, or a copy of src
// after the state lock is released (the disk stays Creating until then).
func (s *Server) makeDiskFile(c *call, d *disk, src *snapshot) error {
	path := s.diskPath(d.ID)
	if src == nil {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Truncate(int64(d.SizeGiB) * gib); err != nil {
			return err
		}
		d.DataReady = true
		return nil
	}
	from, id, size := s.snapshotPath(src.ID), d.ID, int64(d.SizeGiB)*gib
	c.after = append(c.after, func() error {
		_, _, err := cloneOrCopy(from, path, size, s.opt.Dir)
		s.mu.Lock()
		defer s.mu.Unlock()
		if d := s.st.Disks[id]; d != nil {
			if err != nil {
				delete(s.st.Disks, id)
				os.Remove(path)
			} else {
				d.DataReady = true
			}
			s.save()
		}
		if err != nil {
			return fmt.Errorf("disk %s from snapshot: %w", id, err)
		}
		return nil
	})
	return nil
}

func (s *Server) advanceDisk(d *disk, now time.Time) bool {
	el := now.Sub(d.Since)
	switch {
	case d.Status == "Creating" && d.DataReady && el >= s.timing.DiskCreating && now.After(d.Since):
		d.Status, d.Since = "Available", now
	case d.Status == "Attaching" && el >= s.timing.DiskAttaching && now.After(d.Since):
		d.Status, d.Since, d.EverAttached, d.AttachedAt = "In_use", now, true, now
		s.rt.diskAttached(d)
	case d.Status == "Detaching" && el >= s.timing.DiskDetaching && now.After(d.Since):
		s.rt.diskDetached(d)
		d.Status, d.Since, d.InstanceID, d.Device, d.DetachedAt = "Available", now, "", "", now
	default:
		return false
	}
	return true
}

func attachDisk(c *call) (obj, error) {
	did, err := c.required("DiskId")
	if err != nil {
		return nil, err
	}
	iid, err := c.required("InstanceId")
	if err != nil {
		return nil, err
	}
	if boot, err := c.boolean("Bootable", false); err != nil || boot {
		return nil, newErr(403, "InvalidParameter.Bootable", "The emulator does not attach disks as system disks.")
	}
	dwi, err := c.boolean("DeleteWithInstance", false)
	if err != nil {
		return nil, err
	}
	d := c.s.st.Disks[did]
	if d == nil {
		return nil, errDiskNotFound
	}
	in := c.s.st.Instances[iid]
	if in == nil {
		return nil, errInstanceNotFound
	}
	if d.Status != "Available" {
		return nil, errDiskStatus
	}
	if in.Status != "Running" && in.Status != "Stopped" {
		return nil, errInstanceStatus
	}
	if d.ZoneID != in.ZoneID {
		return nil, errZoneMismatch
	}
	used := map[string]bool{}
	n := 0
	for _, o := range c.s.st.Disks {
		if o.InstanceID == iid {
			used[o.Device] = true
			if o.Type == "data" {
				n++
			}
		}
	}
	if n >= 16 {
		return nil, errDiskLimit
	}
	dev := c.str("Device")
	if dev != "" {
		if len(dev) != 9 || dev[:8] != "/dev/xvd" || dev[8] < 'b' || dev[8] > 'z' || used[dev] {
			return nil, newErr(400, "InvalidDevice.Malformed", "The specified parameter Device is not valid.")
		}
	} else {
		for l := byte('b'); l <= 'z'; l++ {
			if cand := "/dev/xvd" + string(l); !used[cand] {
				dev = cand
				break
			}
		}
	}
	d.Status, d.Since, d.InstanceID, d.Device, d.DeleteWithInstance = "Attaching", c.now, iid, dev, dwi
	return obj{}, nil
}

func detachDisk(c *call) (obj, error) {
	did, err := c.required("DiskId")
	if err != nil {
		return nil, err
	}
	iid, err := c.required("InstanceId")
	if err != nil {
		return nil, err
	}
	d := c.s.st.Disks[did]
	if d == nil {
		return nil, errDiskNotFound
	}
	if c.s.st.Instances[iid] == nil {
		return nil, errInstanceNotFound
	}
	if d.InstanceID != iid || d.Status != "In_use" {
		return nil, errDiskStatus
	}
	if d.Type == "system" {
		return nil, newErr(403, "IncorrectDiskType", "The system disk cannot be detached.")
	}
	d.Status, d.Since = "Detaching", c.now
	return obj{}, nil
}

func deleteDisk(c *call) (obj, error) {
	did, err := c.required("DiskId")
	if err != nil {
		return nil, err
	}
	d := c.s.st.Disks[did]
	if d == nil {
		return nil, errDiskNotFound
	}
	if d.Status != "Available" {
		return nil, errDiskStatus
	}
	c.s.removeDisk(d)
	return obj{}, nil
}

// removeDisk deletes d and its file; its snapshots stay, as on ECS.
func (s *Server) removeDisk(d *disk) {
	delete(s.st.Disks, d.ID)
	os.Remove(s.diskPath(d.ID))
}

func resizeDisk(c *call) (obj, error) {
	did, err := c.required("DiskId")
	if err != nil {
		return nil, err
	}
	d := c.s.st.Disks[did]
	if d == nil {
		return nil, errDiskNotFound
	}
	if t := c.str("Type"); t != "" && t != "offline" && t != "online" {
		return nil, errInvalid("Type")
	}
	if _, err := c.required("NewSize"); err != nil {
		return nil, err
	}
	rng := diskSizeRange[d.Category]
	n, err := c.integer("NewSize", 0, 1, rng[1])
	if err != nil {
		return nil, errDiskSize
	}
	if n < d.SizeGiB {
		return nil, errDiskTooSmall
	}
	if d.Status != "Available" && d.Status != "In_use" {
		return nil, errDiskStatus
	}
	if err := os.Truncate(c.s.diskPath(d.ID), int64(n)*gib); err != nil {
		return nil, err
	}
	d.SizeGiB = n
	return obj{}, nil
}

func describeDisks(c *call) (obj, error) {
	ids, err := c.list("DiskIds", 100)
	if err != nil {
		return nil, err
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	typ := c.str("DiskType")
	switch typ {
	case "", "all", "system", "data":
	default:
		return nil, errInvalid("DiskType")
	}
	inst, zone, cat, status, snap, name := c.str("InstanceId"), c.str("ZoneId"), c.str("Category"), c.str("Status"), c.str("SnapshotId"), c.str("DiskName")
	if status == "All" {
		status = ""
	}
	if c.dry {
		return nil, nil
	}
	items := newestFirst(c.s.st.Disks, func(d *disk) int64 { return d.Seq }, func(d *disk) bool {
		return (len(ids) == 0 || containsFold(ids, d.ID)) && (inst == "" || d.InstanceID == inst) && (zone == "" || d.ZoneID == zone) &&
			(typ == "" || typ == "all" || d.Type == typ) && (cat == "" || d.Category == cat) && (status == "" || d.Status == status) &&
			(snap == "" || d.SourceSnapshotID == snap) && (name == "" || wildcard(name, d.Name)) && tagFilter(d.Tags, tags)
	})
	pg, fields, err := paginate(c, items, func(d *disk) int64 { return d.Seq }, 100, true)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(pg))
	for _, d := range pg {
		list = append(list, c.s.diskJSON(d))
	}
	fields["Disks"] = obj{"Disk": list}
	return fields, nil
}

func (s *Server) diskJSON(d *disk) obj {
	att := []obj{}
	if d.InstanceID != "" {
		att = append(att, obj{"InstanceId": d.InstanceID, "Device": d.Device, "AttachedTime": ecsTime(d.AttachedAt)})
	}
	return obj{"DiskId": d.ID, "DiskName": d.Name, "Description": d.Description, "Type": d.Type, "Category": d.Category,
		"Size": d.SizeGiB, "Status": d.Status, "InstanceId": d.InstanceID, "Device": d.Device, "ZoneId": d.ZoneID,
		"RegionId": s.opt.Region, "SourceSnapshotId": d.SourceSnapshotID, "Portable": d.Type == "data",
		"DeleteWithInstance": d.DeleteWithInstance, "DeleteAutoSnapshot": false, "EnableAutoSnapshot": false, "Encrypted": false,
		"DiskChargeType": "PostPaid", "MultiAttach": "Disabled", "PerformanceLevel": "", "SerialNumber": serialOf(d.ID),
		"CreationTime": ecsTime(d.CreatedAt), "AttachedTime": ecsTime(d.AttachedAt), "DetachedTime": ecsTime(d.DetachedAt),
		"Tags": tagsJSON(d.Tags), "Attachments": obj{"Attachment": att}, "OperationLocks": obj{"OperationLock": []obj{}}}
}
