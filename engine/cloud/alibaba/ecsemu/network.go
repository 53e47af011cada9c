package ecsemu

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

var regions = []struct{ id, name string }{
	{"cn-hangzhou", "华东1（杭州）"}, {"cn-shanghai", "华东2（上海）"}, {"cn-beijing", "华北2（北京）"},
	{"cn-shenzhen", "华南1（深圳）"}, {"ap-southeast-1", "新加坡"}, {"eu-central-1", "德国（法兰克福）"},
}

func init() {
	register(&action{name: "DescribeRegions", noRegion: true,
		params: []string{"InstanceChargeType", "ResourceType", "AcceptLanguage"}, run: describeRegions})
	register(&action{name: "DescribeZones",
		params: []string{"InstanceChargeType", "Verbose", "SpotStrategy", "AcceptLanguage"}, run: describeZones})
	register(&action{name: "DescribeVpcs",
		params: []string{"VpcId", "IsDefault", "PageNumber", "PageSize"}, run: describeVpcs})
	register(&action{name: "DescribeVSwitches",
		params: []string{"VSwitchId", "VpcId", "ZoneId", "IsDefault", "PageNumber", "PageSize"}, run: describeVSwitches})
	register(&action{name: "CreateSecurityGroup", write: true,
		params: []string{"ClientToken", "Description", "SecurityGroupName", "SecurityGroupType", "VpcId", "ResourceGroupId", "Tag.N.Key", "Tag.N.Value"},
		run:    createSecurityGroup})
	register(&action{name: "AuthorizeSecurityGroup", write: true,
		params: []string{"ClientToken", "SecurityGroupId", "IpProtocol", "PortRange", "SourceCidrIp", "Policy", "Priority", "NicType",
			"Description", "Permissions.N.IpProtocol", "Permissions.N.PortRange", "Permissions.N.SourceCidrIp", "Permissions.N.Policy",
			"Permissions.N.Priority", "Permissions.N.NicType", "Permissions.N.Description"},
		run: authorizeSecurityGroup})
	register(&action{name: "DeleteSecurityGroup", write: true, params: []string{"SecurityGroupId"}, run: deleteSecurityGroup})
	register(&action{name: "DescribeSecurityGroups", dryRun: true,
		params: []string{"VpcId", "SecurityGroupId", "SecurityGroupIds", "SecurityGroupName", "SecurityGroupType", "PageNumber", "PageSize",
			"NextToken", "MaxResults", "Tag.N.Key", "Tag.N.Value", "ResourceGroupId", "NetworkType", "FuzzyQuery", "IsQueryEcsCount"},
		run: describeSecurityGroups})
	register(&action{name: "DescribeSecurityGroupAttribute",
		params: []string{"SecurityGroupId", "Direction", "NicType", "NextToken", "MaxResults"}, run: describeSecurityGroupAttribute})
}

func describeRegions(c *call) (obj, error) {
	list := make([]obj, 0, len(regions))
	for _, r := range regions {
		list = append(list, obj{"RegionId": r.id, "LocalName": r.name, "RegionEndpoint": "ecs." + r.id + ".aliyuncs.com", "Status": "available"})
	}
	return obj{"Regions": obj{"Region": list}}, nil
}

func describeZones(c *call) (obj, error) {
	types := make([]string, 0, len(instanceTypes))
	for _, t := range instanceTypes {
		types = append(types, t.id)
	}
	z := obj{"ZoneId": c.s.opt.Zone, "LocalName": c.s.opt.Zone, "ZoneType": "AvailabilityZone",
		"AvailableResourceCreation": obj{"ResourceTypes": []string{"VSwitch", "IoOptimized", "Instance", "Disk", "DedicatedHost"}},
		"AvailableDiskCategories":   obj{"DiskCategories": diskCategories},
		"AvailableInstanceTypes":    obj{"InstanceTypes": types}}
	return obj{"Zones": obj{"Zone": []obj{z}}}, nil
}

func describeVpcs(c *call) (obj, error) {
	id := c.str("VpcId")
	def, err := c.boolean("IsDefault", false)
	if err != nil {
		return nil, err
	}
	items := newestFirst(c.s.st.VPCs, func(v *vpc) int64 { return v.Seq }, func(v *vpc) bool {
		return (id == "" || v.ID == id) && (!c.has("IsDefault") || v.IsDefault == def)
	})
	pg, fields, err := paginate(c, items, func(v *vpc) int64 { return v.Seq }, 50, false)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(pg))
	for _, v := range pg {
		var sws []string
		for _, sw := range c.s.st.VSwitches {
			if sw.VpcID == v.ID {
				sws = append(sws, sw.ID)
			}
		}
		list = append(list, obj{"VpcId": v.ID, "VpcName": v.Name, "CidrBlock": v.CIDR, "IsDefault": v.IsDefault,
			"RegionId": c.s.opt.Region, "Status": "Available", "CreationTime": ecsTime(v.CreatedAt), "VSwitchIds": obj{"VSwitchId": sws}})
	}
	fields["Vpcs"] = obj{"Vpc": list}
	return fields, nil
}

func describeVSwitches(c *call) (obj, error) {
	id, vpcID, zone := c.str("VSwitchId"), c.str("VpcId"), c.str("ZoneId")
	def, err := c.boolean("IsDefault", false)
	if err != nil {
		return nil, err
	}
	items := newestFirst(c.s.st.VSwitches, func(v *vswitch) int64 { return v.Seq }, func(v *vswitch) bool {
		return (id == "" || v.ID == id) && (vpcID == "" || v.VpcID == vpcID) && (zone == "" || v.ZoneID == zone) &&
			(!c.has("IsDefault") || v.IsDefault == def)
	})
	pg, fields, err := paginate(c, items, func(v *vswitch) int64 { return v.Seq }, 50, false)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(pg))
	for _, v := range pg {
		used := 0
		for _, in := range c.s.st.Instances {
			if in.VSwitchID == v.ID {
				used++
			}
		}
		p := netip.MustParsePrefix(v.CIDR)
		avail := (1 << (32 - p.Bits())) - 4 - used
		list = append(list, obj{"VSwitchId": v.ID, "VpcId": v.VpcID, "VSwitchName": v.Name, "ZoneId": v.ZoneID,
			"CidrBlock": v.CIDR, "IsDefault": v.IsDefault, "Status": "Available", "AvailableIpAddressCount": avail,
			"CreationTime": ecsTime(v.CreatedAt)})
	}
	fields["VSwitches"] = obj{"VSwitch": list}
	return fields, nil
}

func createSecurityGroup(c *call) (obj, error) {
	name, desc := c.str("SecurityGroupName"), c.str("Description")
	if !nameOK(name) {
		return nil, newErr(400, "InvalidSecurityGroupName.Malformed", "The specified parameter SecurityGroupName is not valid.")
	}
	if !descriptionOK(desc) {
		return nil, newErr(400, "InvalidDescription.Malformed", "The specified description is wrongly formed.")
	}
	if t := c.str("SecurityGroupType"); t != "" && t != "normal" && t != "enterprise" {
		return nil, errInvalid("SecurityGroupType")
	}
	vpcID := c.str("VpcId")
	if vpcID == "" {
		for _, v := range c.s.st.VPCs {
			if v.IsDefault {
				vpcID = v.ID
			}
		}
	} else if c.s.st.VPCs[vpcID] == nil {
		return nil, errVpcNotFound
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	if c.dry {
		return nil, nil
	}
	sg := &securityGroup{Seq: c.s.nextSeq(), ID: c.s.newID("sg"), Name: name, Description: desc, VpcID: vpcID, Tags: tags, CreatedAt: c.now}
	c.s.st.SecurityGroups[sg.ID] = sg
	return obj{"SecurityGroupId": sg.ID}, nil
}

// parseRule checks one ingress rule as ECS does.
func parseRule(proto, ports, cidr, policy, prio, nic, desc string) (rule, error) {
	r := rule{Protocol: strings.ToLower(proto), PortRange: ports, SourceCidrIP: cidr, Policy: strings.ToLower(policy), NicType: nic, Description: desc}
	switch r.Protocol {
	case "tcp", "udp", "icmp", "gre", "all":
	case "":
		return r, errMissing("IpProtocol")
	default:
		return r, newErr(400, "InvalidIpProtocol.Malformed", "The specified parameter IpProtocol is not valid.")
	}
	if ports == "" {
		return r, errMissing("PortRange")
	}
	lo, hi, ok := portRange(ports)
	if !ok || (r.Protocol == "tcp" || r.Protocol == "udp") && (lo < 1 || hi > 65535 || lo > hi) || (r.Protocol != "tcp" && r.Protocol != "udp" && ports != "-1/-1") {
		return r, newErr(400, "InvalidPortRange.Malformed", "The specified parameter PortRange is not valid.")
	}
	if cidr == "" {
		return r, errMissing("SourceCidrIp")
	}
	if _, err := netip.ParsePrefix(cidr); err != nil {
		if _, err := netip.ParseAddr(cidr); err != nil {
			return r, newErr(400, "InvalidSourceCidrIp.Malformed", "The specified parameter SourceCidrIp is not valid.")
		}
	}
	switch r.Policy {
	case "":
		r.Policy = "accept"
	case "accept", "drop":
	default:
		return r, errInvalid("Policy")
	}
	r.Priority = 1
	if prio != "" {
		n, err := strconv.Atoi(prio)
		if err != nil || n < 1 || n > 100 {
			return r, errInvalid("Priority")
		}
		r.Priority = n
	}
	if r.NicType == "" {
		r.NicType = "intranet"
	}
	if r.NicType != "intranet" && r.NicType != "internet" {
		return r, errInvalid("NicType")
	}
	return r, nil
}

func portRange(s string) (int, int, bool) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	return lo, hi, err1 == nil && err2 == nil
}

func authorizeSecurityGroup(c *call) (obj, error) {
	id, err := c.required("SecurityGroupId")
	if err != nil {
		return nil, err
	}
	sg := c.s.st.SecurityGroups[id]
	if sg == nil {
		return nil, errSGNotFound
	}
	var rules []rule
	if c.has("IpProtocol") || c.has("PortRange") {
		r, err := parseRule(c.str("IpProtocol"), c.str("PortRange"), c.str("SourceCidrIp"), c.str("Policy"), c.str("Priority"), c.str("NicType"), c.str("Description"))
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	for _, n := range c.indexed("Permissions") {
		p := fmt.Sprintf("Permissions.%d.", n)
		r, err := parseRule(c.str(p+"IpProtocol"), c.str(p+"PortRange"), c.str(p+"SourceCidrIp"), c.str(p+"Policy"), c.str(p+"Priority"), c.str(p+"NicType"), c.str(p+"Description"))
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, errMissing("Permissions")
	}
	if len(sg.Rules)+len(rules) > 200 {
		return nil, newErr(403, "AuthorizationLimitExceed", "The limit of authorization records in the security group reaches.")
	}
next:
	for _, r := range rules {
		for _, have := range sg.Rules {
			if have.Protocol == r.Protocol && have.PortRange == r.PortRange && have.SourceCidrIP == r.SourceCidrIP && have.Policy == r.Policy && have.NicType == r.NicType {
				continue next // ECS accepts an existing rule again and changes nothing
			}
		}
		r.CreatedAt = c.now
		sg.Rules = append(sg.Rules, r)
	}
	c.s.rt.rulesChanged(sg.ID)
	return obj{}, nil
}

func deleteSecurityGroup(c *call) (obj, error) {
	id, err := c.required("SecurityGroupId")
	if err != nil {
		return nil, err
	}
	if c.s.st.SecurityGroups[id] == nil {
		return nil, errSGNotFound
	}
	for _, in := range c.s.st.Instances {
		if containsFold(in.SecurityGroupIDs, id) {
			return nil, errSGInUse
		}
	}
	delete(c.s.st.SecurityGroups, id)
	return obj{}, nil
}

func describeSecurityGroups(c *call) (obj, error) {
	ids, err := c.list("SecurityGroupIds", 100)
	if err != nil {
		return nil, err
	}
	if one := c.str("SecurityGroupId"); one != "" {
		ids = append(ids, one)
	}
	tags, err := c.tags()
	if err != nil {
		return nil, err
	}
	vpcID, name := c.str("VpcId"), c.str("SecurityGroupName")
	if c.dry {
		return nil, nil
	}
	items := newestFirst(c.s.st.SecurityGroups, func(v *securityGroup) int64 { return v.Seq }, func(v *securityGroup) bool {
		return (len(ids) == 0 || containsFold(ids, v.ID)) && (vpcID == "" || v.VpcID == vpcID) && (name == "" || wildcard(name, v.Name)) && tagFilter(v.Tags, tags)
	})
	pg, fields, err := paginate(c, items, func(v *securityGroup) int64 { return v.Seq }, 100, true)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(pg))
	for _, v := range pg {
		n := 0
		for _, in := range c.s.st.Instances {
			if containsFold(in.SecurityGroupIDs, v.ID) {
				n++
			}
		}
		list = append(list, obj{"SecurityGroupId": v.ID, "SecurityGroupName": v.Name, "Description": v.Description, "VpcId": v.VpcID,
			"SecurityGroupType": "normal", "CreationTime": ecsTime(v.CreatedAt), "EcsCount": n, "AvailableInstanceAmount": 2000 - n,
			"RuleCount": len(v.Rules), "Tags": tagsJSON(v.Tags)})
	}
	fields["SecurityGroups"] = obj{"SecurityGroup": list}
	fields["RegionId"] = c.s.opt.Region
	return fields, nil
}

func describeSecurityGroupAttribute(c *call) (obj, error) {
	id, err := c.required("SecurityGroupId")
	if err != nil {
		return nil, err
	}
	sg := c.s.st.SecurityGroups[id]
	if sg == nil {
		return nil, errSGNotFound
	}
	if d := c.str("Direction"); d != "" && d != "ingress" && d != "egress" && d != "all" {
		return nil, errInvalid("Direction")
	}
	perms := make([]obj, 0, len(sg.Rules))
	for _, r := range sg.Rules {
		perms = append(perms, obj{"IpProtocol": strings.ToUpper(r.Protocol), "PortRange": r.PortRange, "SourceCidrIp": r.SourceCidrIP,
			"Policy": strings.ToUpper(r.Policy[:1]) + r.Policy[1:], "Priority": strconv.Itoa(r.Priority), "NicType": r.NicType,
			"Direction": "ingress", "Description": r.Description, "CreateTime": ecsTime(r.CreatedAt)})
	}
	return obj{"SecurityGroupId": sg.ID, "SecurityGroupName": sg.Name, "Description": sg.Description, "VpcId": sg.VpcID,
		"RegionId": c.s.opt.Region, "InnerAccessPolicy": "Accept", "Permissions": obj{"Permission": perms}}, nil
}

// ingressAllows reports whether the security groups admit TCP to port from addr.
func (s *Server) ingressAllows(groups []string, port int, addr netip.Addr) bool {
	best, verdict := 1000, false
	for _, id := range groups {
		sg := s.st.SecurityGroups[id]
		if sg == nil {
			continue
		}
		for _, r := range sg.Rules {
			if r.Protocol != "tcp" && r.Protocol != "all" {
				continue
			}
			if r.Protocol == "tcp" {
				lo, hi, _ := portRange(r.PortRange)
				if port < lo || port > hi {
					continue
				}
			}
			if !cidrContains(r.SourceCidrIP, addr) {
				continue
			}
			// Lower numbers win; at equal priority drop wins (ECS's rule).
			if r.Priority < best || r.Priority == best && r.Policy == "drop" {
				best, verdict = r.Priority, r.Policy == "accept"
			}
		}
	}
	return verdict
}

// ingressPorts lists the TCP ports the groups accept from anywhere at all,
// bounded to 64 (the ports served on the instance's private address).
func (s *Server) ingressPorts(groups []string) []int {
	seen := map[int]bool{}
	var out []int
	for _, id := range groups {
		sg := s.st.SecurityGroups[id]
		if sg == nil {
			continue
		}
		for _, r := range sg.Rules {
			if r.Protocol != "tcp" || r.Policy != "accept" {
				continue
			}
			lo, hi, _ := portRange(r.PortRange)
			for p := lo; p <= hi && len(out) < 64; p++ {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func cidrContains(cidr string, a netip.Addr) bool {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		return p.Contains(a)
	}
	b, err := netip.ParseAddr(cidr)
	return err == nil && b == a
}
