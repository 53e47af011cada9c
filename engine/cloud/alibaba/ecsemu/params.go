package ecsemu

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// commonParams are the parameters every RPC call carries (the SDK adds them
// all, SignatureType empty) plus the account-ownership ones every ECS action
// accepts.
var commonParams = set("Action", "Version", "Format", "AccessKeyId", "Signature", "SignatureMethod",
	"SignatureVersion", "SignatureNonce", "SignatureType", "Timestamp", "RegionId", "SecurityToken",
	"OwnerId", "OwnerAccount", "ResourceOwnerId", "ResourceOwnerAccount")

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// indexRE finds the ".N" of a repeated parameter ("Tag.3.Key").
var indexRE = regexp.MustCompile(`\.[0-9]+(\.|$)`)

// pattern turns "DataDisk.2.Size" into "DataDisk.N.Size".
func pattern(name string) string {
	for {
		loc := indexRE.FindStringIndex(name)
		if loc == nil {
			return name
		}
		end := loc[1]
		if name[end-1] == '.' {
			end--
		}
		name = name[:loc[0]] + ".N" + name[end:]
	}
}

// call is one authenticated request being served.
type call struct {
	s         *Server
	action    *action
	params    map[string]string
	requestID string
	now       time.Time
	account   *account
	principal string // the key's user ("root" or a RAM user) or the assumed role
	dry       bool
	after     []func() error // work done after the state lock is released
}

func (c *call) has(name string) bool { _, ok := c.params[name]; return ok }

func (c *call) str(name string) string { return c.params[name] }

func (c *call) required(name string) (string, error) {
	v := c.params[name]
	if v == "" {
		return "", errMissing(name)
	}
	return v, nil
}

func (c *call) boolean(name string, def bool) (bool, error) {
	v, ok := c.params[name]
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errInvalid(name)
}

func (c *call) integer(name string, def, min, max int) (int, error) {
	v, ok := c.params[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, errInvalid(name)
	}
	return n, nil
}

// list reads a JSON-array parameter (DiskIds='["d-1","d-2"]'), as ECS's
// Describe* calls take their id filters.
func (c *call) list(name string, max int) ([]string, error) {
	v, ok := c.params[name]
	if !ok || v == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil || len(out) > max {
		return nil, errInvalid(name)
	}
	return out, nil
}

// repeated reads NAME.1, NAME.2, … (the SDK's Repeated fields) in order.
func (c *call) repeated(name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := c.params[name+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

// indexed returns the sorted N of every NAME.N.* parameter present.
func (c *call) indexed(name string) []int {
	seen := map[int]bool{}
	prefix := name + "."
	for k := range c.params {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// tags reads Tag.N.Key / Tag.N.Value (at most 20, as ECS allows).
func (c *call) tags() (map[string]string, error) {
	idx := c.indexed("Tag")
	if len(idx) > 20 {
		return nil, errInvalidWhy("Tag", "at most 20 tags")
	}
	if len(idx) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, n := range idx {
		k := c.params["Tag."+strconv.Itoa(n)+".Key"]
		if k == "" || strings.HasPrefix(k, "aliyun") || strings.HasPrefix(k, "acs:") || len(k) > 128 {
			return nil, newErr(400, "InvalidTagKey.Malformed", "The specified Tag.n.Key is not valid.")
		}
		out[k] = c.params["Tag."+strconv.Itoa(n)+".Value"]
	}
	return out, nil
}

// tagFilter reports whether have carries every tag of want (a value "" in
// want matches any value).
func tagFilter(have, want map[string]string) bool {
	for k, v := range want {
		hv, ok := have[k]
		if !ok || (v != "" && hv != v) {
			return false
		}
	}
	return true
}

// fingerprint is what makes two calls with one ClientToken "identical":
// every parameter but the signature's, the token itself and DryRun.
func (c *call) fingerprint() string {
	keys := make([]string, 0, len(c.params))
	for k := range c.params {
		switch k {
		case "Signature", "SignatureNonce", "Timestamp", "AccessKeyId", "SecurityToken", "SignatureMethod",
			"SignatureVersion", "SignatureType", "Format", "ClientToken":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(c.params[k])
		b.WriteByte('&')
	}
	return b.String()
}

// nameOK checks an ECS display name: 2–128 characters, starting with a
// letter, not with http:// or https://.
func nameOK(v string) bool {
	if v == "" {
		return true
	}
	if len(v) < 2 || len(v) > 128 || strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
		return false
	}
	r := v[0]
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80
}

func descriptionOK(v string) bool {
	return v == "" || len(v) >= 2 && len(v) <= 256 && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://")
}

// wildcard matches ECS name filters, where '*' stands for any run.
func wildcard(pat, s string) bool {
	if !strings.Contains(pat, "*") {
		return pat == s
	}
	parts := strings.Split(pat, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}
