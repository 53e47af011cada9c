package adapt

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Network is what the target network allows.
type Network struct {
	// CIDR of the network the launch is attached to ("10.0.2.0/24").
	CIDR string
	// KeepStatic keeps a source's static address when it lies inside CIDR
	// (the target subnet was made to match the source's). Otherwise every
	// static configuration becomes DHCP: an address outside the target
	// subnet has no route, and a copy reusing the source's address inside a
	// shared subnet would collide with the source while both run.
	KeepStatic bool
}

// decide says whether a static address (CIDR form, or address plus
// netmask) can stay, and why.
func (n Network) decide(addr string) (keep bool, why string) {
	p, err := parseAddr(addr)
	if err != nil {
		return false, fmt.Sprintf("static address %q unreadable (%v): DHCP instead", addr, err)
	}
	if !n.KeepStatic {
		return false, fmt.Sprintf("static address %s replaced by DHCP: the target network hands out addresses (keeping the source's would collide with the source while both run)", p)
	}
	t, err := netip.ParsePrefix(n.CIDR)
	if err != nil {
		return false, fmt.Sprintf("static address %s replaced by DHCP: target network %q unknown", p, n.CIDR)
	}
	if !t.Contains(p.Addr()) {
		return false, fmt.Sprintf("static address %s replaced by DHCP: it is outside the target network %s, so nothing would route to it", p, t)
	}
	return true, fmt.Sprintf("static address %s kept: it lies in the target network %s, which allows static addresses", p, t)
}

func parseAddr(s string) (netip.Prefix, error) {
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, 32), nil
}

func maskBits(mask string) int {
	m, err := netip.ParseAddr(strings.Trim(mask, `"'`))
	if err != nil || !m.Is4() {
		return 0
	}
	b := m.As4()
	n := 0
	for _, x := range b {
		for ; x&0x80 != 0; x <<= 1 {
			n++
		}
	}
	return n
}

// netEdit is one network file's new text and what happened to it.
type netEdit struct {
	text  string
	notes []string
	names []string // interface names the config refers to
}

var ifaceStanza = regexp.MustCompile(`^iface\s+(\S+)\s+inet\s+(\S+)`)

// rewriteInterfaces handles ifupdown's /etc/network/interfaces: each
// "iface X inet static" stanza becomes "inet dhcp" (its address, netmask,
// gateway, broadcast, network and hwaddress lines dropped) unless n keeps it.
func rewriteInterfaces(text string, n Network) netEdit {
	var out []string
	var e netEdit
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		m := ifaceStanza.FindStringSubmatch(strings.TrimSpace(l))
		if m != nil && m[1] != "lo" {
			e.names = append(e.names, m[1])
		}
		if m == nil || m[2] != "static" {
			out = append(out, l)
			continue
		}
		// Collect the stanza's option lines.
		j := i + 1
		var opts []string
		for ; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			if t == "" || ifaceStanza.MatchString(t) || strings.HasPrefix(t, "auto ") || strings.HasPrefix(t, "allow-") ||
				strings.HasPrefix(t, "source") || strings.HasPrefix(t, "mapping ") {
				break
			}
			opts = append(opts, lines[j])
		}
		addr, mask := "", ""
		for _, o := range opts {
			f := strings.Fields(o)
			if len(f) >= 2 && f[0] == "address" {
				addr = f[1]
			}
			if len(f) >= 2 && f[0] == "netmask" {
				mask = f[1]
			}
		}
		if mask != "" && !strings.Contains(addr, "/") {
			addr = fmt.Sprintf("%s/%d", addr, maskBits(mask))
		}
		keep, why := n.decide(addr)
		e.notes = append(e.notes, fmt.Sprintf("%s: %s", m[1], why))
		if keep {
			out = append(out, l)
			out = append(out, opts...)
		} else {
			out = append(out, strings.Replace(l, "static", "dhcp", 1))
			for _, o := range opts {
				f := strings.Fields(o)
				if len(f) > 0 && (f[0] == "address" || f[0] == "netmask" || f[0] == "gateway" || f[0] == "broadcast" ||
					f[0] == "network" || f[0] == "hwaddress" || f[0] == "pointopoint") {
					continue
				}
				out = append(out, o)
			}
		}
		i = j - 1
	}
	e.text = strings.Join(out, "\n")
	return e
}

// rewriteNetworkd handles a systemd-networkd .network file: a [Match] on the
// source NIC's MAC becomes a match on Ethernet names, and static Address=
// and Gateway= (with [Address] and [Route] sections) give way to DHCP=yes.
func rewriteNetworkd(text string, n Network) netEdit {
	var e netEdit
	type sec struct {
		name  string
		lines []string
	}
	var secs []*sec
	cur := &sec{}
	secs = append(secs, cur)
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			cur = &sec{name: t}
			secs = append(secs, cur)
		}
		cur.lines = append(cur.lines, l)
	}
	key := func(l string) (string, string) {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		return strings.TrimSpace(k), strings.TrimSpace(v)
	}
	var addrs []string
	for _, s := range secs {
		for _, l := range s.lines {
			k, v := key(l)
			if (s.name == "[Network]" || s.name == "[Address]") && k == "Address" {
				addrs = append(addrs, v)
			}
			if s.name == "[Match]" && k == "Name" {
				e.names = append(e.names, strings.Fields(v)...)
			}
		}
	}
	keep := true
	for _, a := range addrs {
		k, why := n.decide(a)
		e.notes = append(e.notes, why)
		keep = keep && k
	}
	var out []string
	for _, s := range secs {
		if !keep && (s.name == "[Address]" || s.name == "[Route]") {
			continue
		}
		var body []string
		hasName, hasDHCP := false, false
		for _, l := range s.lines {
			k, _ := key(l)
			switch {
			case s.name == "[Match]" && (k == "MACAddress" || k == "PermanentMACAddress"):
				e.notes = append(e.notes, "match on the source NIC's MAC address replaced by a match on Ethernet names")
				continue
			case s.name == "[Match]" && k == "Name":
				hasName = true
			case s.name == "[Network]" && !keep && (k == "Address" || k == "Gateway"):
				continue
			case s.name == "[Network]" && k == "DHCP":
				hasDHCP = true
				if !keep {
					l = "DHCP=yes"
				}
			}
			body = append(body, l)
		}
		if s.name == "[Match]" && !hasName {
			body = append(body, "Name=en* eth*")
		}
		if s.name == "[Network]" && !keep && !hasDHCP {
			body = append(body, "DHCP=yes")
		}
		out = append(out, body...)
	}
	e.text = strings.Join(out, "\n")
	return e
}

// rewriteKeyfile handles a NetworkManager keyfile
// (system-connections/*.nmconnection): [ipv4] method=manual becomes auto with
// its addresses and gateway dropped, and a binding to the source MAC goes.
func rewriteKeyfile(text string, n Network) netEdit {
	var e netEdit
	lines := strings.Split(text, "\n")
	section := ""
	var addr string
	manual := false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			section = t
			continue
		}
		k, v, _ := strings.Cut(t, "=")
		if section == "[ipv4]" && k == "method" && v == "manual" {
			manual = true
		}
		if section == "[ipv4]" && (strings.HasPrefix(k, "address") && addr == "") {
			addr, _, _ = strings.Cut(v, ",")
		}
		if section == "[connection]" && k == "interface-name" {
			e.names = append(e.names, v)
		}
	}
	keep := true
	if manual {
		var why string
		keep, why = n.decide(addr)
		e.notes = append(e.notes, why)
	}
	var out []string
	section = ""
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			section = t
		}
		k, _, _ := strings.Cut(t, "=")
		switch {
		case section == "[ethernet]" && (k == "mac-address" || k == "cloned-mac-address"):
			e.notes = append(e.notes, "binding to the source NIC's MAC address removed")
			continue
		case section == "[ipv4]" && !keep && (strings.HasPrefix(k, "address") || k == "gateway" || k == "routes"):
			continue
		case section == "[ipv4]" && !keep && k == "method":
			l = "method=auto"
		}
		out = append(out, l)
	}
	e.text = strings.Join(out, "\n")
	return e
}

// rewriteIfcfg handles RHEL's network-scripts and SUSE's wicked ifcfg
// files (KEY=value, values maybe quoted): BOOTPROTO static/none with an
// IPADDR becomes dhcp, the address keys and the HWADDR binding go.
func rewriteIfcfg(text string, n Network) netEdit {
	var e netEdit
	vals := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok {
			vals[k] = strings.Trim(v, `"'`)
		}
	}
	if d := vals["DEVICE"]; d != "" {
		e.names = append(e.names, d)
	}
	proto := strings.ToLower(vals["BOOTPROTO"])
	addr := vals["IPADDR"]
	if addr == "" {
		addr = vals["IPADDR0"]
	}
	static := (proto == "static" || proto == "none" || proto == "") && addr != ""
	keep := true
	if static {
		if p := vals["PREFIX"]; p != "" && !strings.Contains(addr, "/") {
			addr += "/" + p
		} else if m := vals["NETMASK"]; m != "" && !strings.Contains(addr, "/") {
			addr = fmt.Sprintf("%s/%d", addr, maskBits(m))
		}
		var why string
		keep, why = n.decide(addr)
		e.notes = append(e.notes, why)
	}
	var out []string
	sawProto := false
	for _, l := range strings.Split(text, "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch {
		case k == "HWADDR" || k == "MACADDR" || k == "LLADDR":
			e.notes = append(e.notes, "binding to the source NIC's MAC address removed")
			continue
		case static && !keep && (strings.HasPrefix(k, "IPADDR") || strings.HasPrefix(k, "NETMASK") || strings.HasPrefix(k, "PREFIX") ||
			k == "GATEWAY" || k == "BROADCAST" || k == "NETWORK"):
			continue
		case static && !keep && k == "BOOTPROTO":
			sawProto = true
			if strings.Contains(l, "'") {
				l = "BOOTPROTO='dhcp'"
			} else {
				l = "BOOTPROTO=dhcp"
			}
		}
		out = append(out, l)
	}
	if static && !keep && !sawProto {
		out = append(out, "BOOTPROTO=dhcp")
	}
	e.text = strings.Join(out, "\n")
	return e
}

// rewriteNetplan handles a netplan YAML file: each ethernet with static
// addresses gets dhcp4: true and loses addresses, gateways and routes; a
// match on the source MAC becomes a match on Ethernet names. Comments are
// not kept (the change record holds the old text's lines).
func rewriteNetplan(text string, n Network) (netEdit, error) {
	var e netEdit
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return e, fmt.Errorf("netplan YAML: %w", err)
	}
	netw, _ := doc["network"].(map[string]any)
	eths, _ := netw["ethernets"].(map[string]any)
	if len(eths) == 0 {
		e.text = text
		return e, nil
	}
	names := make([]string, 0, len(eths))
	for k := range eths {
		names = append(names, k)
	}
	sort.Strings(names)
	changed := false
	for _, name := range names {
		c, _ := eths[name].(map[string]any)
		if c == nil {
			continue
		}
		e.names = append(e.names, name)
		if m, ok := c["match"].(map[string]any); ok {
			if _, ok := m["macaddress"]; ok {
				delete(m, "macaddress")
				if len(m) == 0 {
					m["name"] = "e*"
				}
				delete(c, "set-name")
				e.notes = append(e.notes, name+": match on the source NIC's MAC address replaced by a match on Ethernet names")
				changed = true
			}
		}
		addrs, _ := c["addresses"].([]any)
		if len(addrs) == 0 {
			continue
		}
		keep := true
		for _, a := range addrs {
			s, _ := a.(string)
			k, why := n.decide(s)
			e.notes = append(e.notes, name+": "+why)
			keep = keep && k
		}
		if !keep {
			for _, k := range []string{"addresses", "gateway4", "gateway6", "routes"} {
				delete(c, k)
			}
			c["dhcp4"] = true
			changed = true
		}
	}
	if !changed {
		e.text = text
		return e, nil
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return e, err
	}
	e.text = string(b)
	return e, nil
}
