package ecsemu

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func init() {
	register(&action{name: "CreateSnapshot", write: true,
		params: []string{"DiskId", "SnapshotName", "Description", "RetentionDays", "ClientToken", "Category", "InstantAccess",
			"ResourceGroupId", "Tag.N.Key", "Tag.N.Value"},
		run: createSnapshot})
	register(&action{name: "DescribeSnapshots", dryRun: true,
		params: []string{"SnapshotIds", "DiskId", "InstanceId", "Status", "SnapshotName", "SnapshotType", "Usage", "SourceDiskType",
			"Category", "PageNumber", "PageSize", "NextToken", "MaxResults", "Tag.N.Key", "Tag.N.Value", "ResourceGroupId", "Encrypted"},
		run: describeSnapshots})
	register(&action{name: "DeleteSnapshot", write: true, params: []string{"SnapshotId", "Force"}, run: deleteSnapshot})
}

func createSnapshot(c *call) (obj, error) {
	did, err := c.required("DiskId")
	if err != nil {
		return nil, err
	}
	d := c.s.st.Disks[did]
	if d == nil {
		return nil, errDiskNotFound
	}
	name, desc := c.str("SnapshotName"), c.str("Description")
	if !nameOK(name) || strings.HasPrefix(name, "auto") {
		return nil, newErr(400, "InvalidSnapshotName.Malformed", "Specified snapshot name is not valid.")
	}
	if !descriptionOK(desc) {
		return nil, newErr(400, "InvalidDescription.Malformed", "The specified description is wrongly formed.")
	}
	days, err := c.integer("RetentionDays", 0, 1, 65536)
	if err != nil {
		return nil, err
	}
	if cat := c.str("Category"); cat != "" && cat != "Standard" && cat != "standard" && cat != "Flash" && cat != "flash" {
		return nil, errInvalid("Category")
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	if !d.EverAttached {
		return nil, errNeverAttached
	}
	if d.Status != "In_use" && d.Status != "Available" {
		return nil, errDiskStatus
	}
	if d.InstanceID != "" {
		if in := c.s.st.Instances[d.InstanceID]; in != nil && in.Status != "Running" && in.Status != "Stopped" {
			return nil, errInstanceStatus
		}
	}
	perDisk := 0
	for _, sn := range c.s.st.Snapshots {
		if sn.DiskID == did {
			perDisk++
			if sn.Status == "progressing" {
				return nil, errSnapshotRunning
			}
		}
	}
	if perDisk >= 256 || len(c.s.st.Snapshots) >= c.s.opt.Quota.Snapshots {
		return nil, errSnapshotQuota
	}
	sn := &snapshot{Seq: c.s.nextSeq(), ID: c.s.newID("s"), Name: name, Description: desc, DiskID: d.ID, DiskSizeGiB: d.SizeGiB,
		DiskType: strings.ToUpper(d.Type[:1]) + d.Type[1:], DiskCategory: d.Category, InstanceID: d.InstanceID,
		Status: "progressing", RetentionDays: days, Tags: tags, CreatedAt: c.now}
	c.s.st.Snapshots[sn.ID] = sn
	// The bytes are taken before the call answers, so the snapshot holds
	// the disk as it was when the caller asked (ECS's point-in-time
	// promise); Progress then climbs over Timing.Snapshot.
	from, to, id := c.s.diskPath(d.ID), c.s.snapshotPath(sn.ID), sn.ID
	size := int64(d.SizeGiB) * gib
	c.after = append(c.after, func() error {
		stored, method, err := cloneOrCopy(from, to, size, c.s.opt.Dir)
		s := c.s
		s.mu.Lock()
		defer s.mu.Unlock()
		if sn := s.st.Snapshots[id]; sn != nil {
			if err != nil {
				sn.Status = "failed"
			} else {
				sn.DataReady, sn.ReadyAt, sn.StoredBytes, sn.Method = true, s.opt.Now().UTC(), stored, method
			}
			s.save()
		}
		if err != nil {
			os.Remove(to)
			return fmt.Errorf("snapshot %s of %s: %w", id, did, err)
		}
		return nil
	})
	return obj{"SnapshotId": sn.ID}, nil
}

func describeSnapshots(c *call) (obj, error) {
	ids, err := c.list("SnapshotIds", 100)
	if err != nil {
		return nil, err
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	status := c.str("Status")
	switch status {
	case "", "all":
		status = ""
	case "progressing", "accomplished", "failed":
	default:
		return nil, errInvalid("Status")
	}
	switch t := c.str("SnapshotType"); t {
	case "", "all", "user":
	case "auto":
		return obj{"Snapshots": obj{"Snapshot": []obj{}}, "TotalCount": 0, "PageNumber": 1, "PageSize": 10, "NextToken": ""}, nil
	default:
		return nil, errInvalid("SnapshotType")
	}
	usage := c.str("Usage")
	disk, inst, name := c.str("DiskId"), c.str("InstanceId"), c.str("SnapshotName")
	if c.dry {
		return nil, nil
	}
	items := newestFirst(c.s.st.Snapshots, func(s *snapshot) int64 { return s.Seq }, func(s *snapshot) bool {
		return (len(ids) == 0 || containsFold(ids, s.ID)) && (disk == "" || s.DiskID == disk) && (inst == "" || s.InstanceID == inst) &&
			(status == "" || s.Status == status) && (name == "" || wildcard(name, s.Name)) && tagFilter(s.Tags, tags) &&
			(usage == "" || c.s.snapshotUsage(s.ID) == usage)
	})
	pg, fields, err := paginate(c, items, func(s *snapshot) int64 { return s.Seq }, 100, true)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(pg))
	for _, sn := range pg {
		p := c.s.progress(sn, c.now)
		remain := 0
		if sn.Status == "progressing" {
			remain = int((c.s.timing.Snapshot.Seconds()) * float64(100-p) / 100)
		}
		list = append(list, obj{"SnapshotId": sn.ID, "SnapshotName": sn.Name, "Description": sn.Description,
			"Progress": strconv.Itoa(p) + "%", "Status": sn.Status, "SourceDiskId": sn.DiskID, "SourceDiskSize": strconv.Itoa(sn.DiskSizeGiB),
			"SourceDiskType": sn.DiskType, "SourceStorageType": "disk", "Category": "standard", "SnapshotType": "user",
			"Usage": c.s.snapshotUsage(sn.ID), "CreationTime": ecsTime(sn.CreatedAt), "LastModifiedTime": ecsTime(sn.CreatedAt),
			"RetentionDays": sn.RetentionDays, "Encrypted": false, "Available": sn.Status == "accomplished", "InstantAccess": false,
			"RemainTime": remain, "RegionId": c.s.opt.Region, "SnapshotSN": "64" + sn.ID[2:], "Tags": tagsJSON(sn.Tags)})
	}
	fields["Snapshots"] = obj{"Snapshot": list}
	return fields, nil
}

// snapshotUsage is ECS's Usage: image, disk, image_disk or none.
func (s *Server) snapshotUsage(id string) string {
	img, dsk := false, false
	for _, im := range s.st.Images {
		for _, m := range im.Disks {
			if m.SnapshotID == id {
				img = true
			}
		}
	}
	for _, d := range s.st.Disks {
		if d.SourceSnapshotID == id {
			dsk = true
		}
	}
	switch {
	case img && dsk:
		return "image_disk"
	case img:
		return "image"
	case dsk:
		return "disk"
	}
	return "none"
}

func deleteSnapshot(c *call) (obj, error) {
	id, err := c.required("SnapshotId")
	if err != nil {
		return nil, err
	}
	force, err := c.boolean("Force", false)
	if err != nil {
		return nil, err
	}
	if c.s.st.Snapshots[id] == nil {
		return nil, errSnapshotNotFound
	}
	switch c.s.snapshotUsage(id) {
	case "image", "image_disk":
		return nil, errSnapshotImage
	case "disk":
		if !force {
			return nil, errSnapshotDisk
		}
	}
	delete(c.s.st.Snapshots, id)
	os.Remove(c.s.snapshotPath(id))
	return obj{}, nil
}
