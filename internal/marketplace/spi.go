// Package marketplace connects Ferry to a cloud marketplace (Alibaba Cloud
// Marketplace's SaaS model, docs/marketplace.md):
//
//   - the provisioning calls the marketplace makes (the SaaS SPI:
//     createInstance, renewInstance, upgradeInstance, expiredInstance,
//     releaseInstance, and verify for single sign-on), each checked with the
//     marketplace's MD5 token over every parameter received and the ISV key;
//   - the adapter GET /api/{action}?userinfo=&accessToken=&params=&traceId=,
//     which maps each action onto a GraphQL operation executed by the same
//     handler, resolvers, authorization and audit as /graphql: there is no
//     second implementation of anything.
//
// The package owns only the marketplace's wire formats and the mapping of
// its identities (instances → tenants, aliUid → users).
package marketplace

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
)

// SPIToken is the marketplace's token for params: every parameter but
// token, sorted by name, as "k1=v1&k2=v2…", then "&key=" and the ISV key,
// MD5 in lower-case hex. Parameters the marketplace adds later are covered
// because every parameter received is.
func SPIToken(params url.Values, key string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		if k != "token" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range params[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	b.WriteString("&key=")
	b.WriteString(key)
	sum := md5.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// CheckSPIToken reports whether params carry the right token for key.
func CheckSPIToken(params url.Values, key string) bool {
	got := strings.ToLower(params.Get("token"))
	want := SPIToken(params, key)
	return key != "" && len(params["token"]) == 1 && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
