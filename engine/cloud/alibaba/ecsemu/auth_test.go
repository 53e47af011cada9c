package ecsemu_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sts"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
)

// signed builds the parameters of a DescribeRegions call the way the SDK
// does, signed with secret.
func signed(secret string, mod func(map[string]string)) map[string]string {
	p := map[string]string{
		"Action": "DescribeRegions", "Version": ecsemu.ECSVersion, "Format": "JSON", "AccessKeyId": ecsemu.DefaultKeyID,
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureType": "", "SignatureNonce": "n-" + time.Now().Format("150405.000000000"),
		"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "RegionId": "cn-hangzhou",
	}
	if mod != nil {
		mod(p)
	}
	p["Signature"] = ecsemu.Sign("POST", p, secret)
	return p
}

type answer struct {
	Status    int
	Code      string
	Message   string
	RequestId string
}

func post(t *testing.T, base string, p map[string]string) answer {
	t.Helper()
	q := url.Values{}
	for k, v := range p {
		q.Set(k, v)
	}
	resp, err := http.Post(base+"/?"+q.Encode(), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSignatureTimestampNonce(t *testing.T) {
	e := start(t, nil)
	good := signed(ecsemu.DefaultKeySecret, nil)
	if a := post(t, e.url, good); a.Status != 200 || a.RequestId == "" {
		t.Fatalf("a well-signed call: %+v", a)
	}
	cases := []struct {
		name   string
		params map[string]string
		status int
		code   string
	}{
		{"replayed nonce", good, 400, "SignatureNonceUsed"},
		{"forged signature", signed("not-the-secret", nil), 400, "SignatureDoesNotMatch"},
		{"a parameter changed after signing", func() map[string]string {
			p := signed(ecsemu.DefaultKeySecret, nil)
			p["RegionId"] = "cn-shanghai"
			return p
		}(), 400, "SignatureDoesNotMatch"},
		{"stale timestamp", signed(ecsemu.DefaultKeySecret, func(p map[string]string) {
			p["Timestamp"] = time.Now().Add(-16 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
		}), 400, "InvalidTimeStamp.Expired"},
		{"timestamp from the future", signed(ecsemu.DefaultKeySecret, func(p map[string]string) {
			p["Timestamp"] = time.Now().Add(16 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
		}), 400, "InvalidTimeStamp.Expired"},
		{"malformed timestamp", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["Timestamp"] = "yesterday" }), 400, "InvalidTimeStamp.Format"},
		{"unknown key", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["AccessKeyId"] = "LTAI-nobody" }), 404, "InvalidAccessKeyId.NotFound"},
		{"no nonce", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { delete(p, "SignatureNonce") }), 400, "MissingParameter"},
		{"other signature method", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["SignatureMethod"] = "HMAC-SHA256" }), 400, "IncompleteSignature"},
		{"unknown action", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["Action"] = "DescribeEverything" }), 404, "InvalidAction.NotFound"},
		{"unknown parameter", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["Colour"] = "blue" }), 400, "InvalidParameter"},
		{"another action's parameter", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["DiskId"] = "d-1" }), 400, "InvalidParameter"},
		{"other version", signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["Version"] = "2016-04-28" }), 400, "InvalidVersion"},
	}
	for _, c := range cases {
		a := post(t, e.url, c.params)
		if a.Status != c.status || a.Code != c.code || a.RequestId == "" || a.Message == "" {
			t.Errorf("%s: %+v, want %d %s with a message and a RequestId", c.name, a, c.status, c.code)
		}
	}
	// A forged request does not burn the nonce of a genuine one.
	forged := signed("not-the-secret", func(p map[string]string) { p["SignatureNonce"] = "shared-nonce" })
	post(t, e.url, forged)
	genuine := signed(ecsemu.DefaultKeySecret, func(p map[string]string) { p["SignatureNonce"] = "shared-nonce" })
	if a := post(t, e.url, genuine); a.Status != 200 {
		t.Errorf("a genuine call after a forged one with its nonce: %+v", a)
	}
}

func TestSDKSignsAsTheEmulatorChecks(t *testing.T) {
	e := start(t, nil)
	// Values that need percent-encoding: spaces, '*', '~', unicode, '/'.
	req := ecs.CreateCreateSecurityGroupRequest()
	req.SecurityGroupName = "ferry gw*~/è"
	req.Description = "sync port only: 8443/8443 * ~"
	if _, err := e.root().CreateSecurityGroup(req); err != nil {
		t.Fatalf("a call with characters to encode: %v", err)
	}
	_, err := e.client(ecsemu.DefaultKeyID, "wrong").DescribeRegions(ecs.CreateDescribeRegionsRequest())
	wantCode(t, "the SDK with a wrong secret", err, "SignatureDoesNotMatch")
	_, err = e.client("LTAI-unknown", "x").DescribeRegions(ecs.CreateDescribeRegionsRequest())
	wantCode(t, "the SDK with an unknown key", err, "InvalidAccessKeyId.NotFound")
}

func TestRAMPermissionsAndSTS(t *testing.T) {
	e := start(t, func(o *ecsemu.Options) {
		o.Keys = []ecsemu.Key{
			{ID: ecsemu.DefaultKeyID, Secret: ecsemu.DefaultKeySecret},
			{ID: "LTAI-reader", Secret: "reader-secret", User: "auditor", Allow: []string{"ecs:Describe*"}},
			{ID: "LTAI-assumer", Secret: "assumer-secret", User: "ferry", Allow: []string{"sts:AssumeRole"}},
		}
		o.Roles = []ecsemu.Role{{Name: "ferry-migrate", Allow: []string{"ecs:*", "sts:GetCallerIdentity"}}}
		o.TimestampWindow = time.Hour // so that the session's expiry, not the SDK's timestamp, is what fails below
	})
	reader := e.client("LTAI-reader", "reader-secret")
	if _, err := reader.DescribeInstances(ecs.CreateDescribeInstancesRequest()); err != nil {
		t.Fatalf("a Describe* key describing: %v", err)
	}
	dry := ecs.CreateRunInstancesRequest()
	dry.DryRun = "true"
	dry.ImageId, dry.InstanceType = "debian_12_6_x64_20G_alibase_20240819.vhd", "ecs.g7.large"
	vpcID, vswID := e.vpc()
	dry.VSwitchId, dry.SecurityGroupId = vswID, e.securityGroup(vpcID)
	_, err := reader.RunInstances(dry)
	wantCode(t, "a Describe* key running instances (DryRun)", err, "Forbidden.RAM")

	// The RAM-role variant: AssumeRole through the SDK's STS client, then ECS
	// with the session's key and token.
	stsc, err := sts.NewClientWithAccessKey("cn-hangzhou", "LTAI-assumer", "assumer-secret")
	if err != nil {
		t.Fatal(err)
	}
	stsc.Domain = e.host()
	ar := sts.CreateAssumeRoleRequest()
	ar.RoleArn, ar.RoleSessionName, ar.DurationSeconds = "acs:ram::1000000000000001:role/ferry-migrate", "ferry", "900"
	cred, err := stsc.AssumeRole(ar)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cred.Credentials.AccessKeyId, "STS.") || cred.Credentials.SecurityToken == "" || cred.Credentials.Expiration == "" {
		t.Fatalf("AssumeRole credentials %+v", cred.Credentials)
	}
	ar.RoleArn = "acs:ram::1000000000000001:role/nobody"
	_, err = stsc.AssumeRole(ar)
	wantCode(t, "an unknown role", err, "EntityNotExist.Role")

	session, err := ecs.NewClientWithStsToken("cn-hangzhou", cred.Credentials.AccessKeyId, cred.Credentials.AccessKeySecret, cred.Credentials.SecurityToken)
	if err != nil {
		t.Fatal(err)
	}
	session.Domain = e.host()
	_, err = session.RunInstances(dry)
	wantCode(t, "the role's session (DryRun)", err, "DryRunOperation")
	if inv := e.srv.Inventory(); len(inv.Instances) != 0 {
		t.Errorf("a DryRun made instances: %v", inv)
	}
	who := sts.CreateGetCallerIdentityRequest()
	sc, _ := sts.NewClientWithStsToken("cn-hangzhou", cred.Credentials.AccessKeyId, cred.Credentials.AccessKeySecret, cred.Credentials.SecurityToken)
	sc.Domain = e.host()
	if id, err := sc.GetCallerIdentity(who); err != nil || id.IdentityType != "AssumedRoleUser" {
		t.Errorf("GetCallerIdentity of the session: %+v, %v", id, err)
	}
	forged, _ := ecs.NewClientWithStsToken("cn-hangzhou", cred.Credentials.AccessKeyId, cred.Credentials.AccessKeySecret, "CAESforged")
	forged.Domain = e.host()
	_, err = forged.DescribeRegions(ecs.CreateDescribeRegionsRequest())
	wantCode(t, "a session key with another token", err, "InvalidSecurityToken.MismatchWithAccessKey")
	e.now.Add(16 * time.Minute) // past the 900 s session
	_, err = session.DescribeRegions(ecs.CreateDescribeRegionsRequest())
	wantCode(t, "an expired session", err, "InvalidSecurityToken.Expired")
}
