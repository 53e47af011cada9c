package ecsemu

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
)

func init() {
	register(&action{name: "AssumeRole", product: "sts", write: true, noRegion: true,
		params: []string{"RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "ExternalId"}, run: assumeRole})
	register(&action{name: "GetCallerIdentity", product: "sts", noRegion: true, run: getCallerIdentity})
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "=")[:n]
}

func assumeRole(c *call) (obj, error) {
	arn, err := c.required("RoleArn")
	if err != nil {
		return nil, err
	}
	session, err := c.required("RoleSessionName")
	if err != nil {
		return nil, err
	}
	if len(session) < 2 || len(session) > 64 {
		return nil, errInvalid("RoleSessionName")
	}
	secs, err := c.integer("DurationSeconds", 3600, 900, 43200)
	if err != nil {
		return nil, newErr(400, "InvalidParameter.DurationSeconds", "The Min/Max value of DurationSeconds is 15min/1hr.")
	}
	if strings.HasPrefix(c.account.keyID, "STS.") {
		return nil, newErr(400, "InvalidParameter.RoleChaining", "The emulator does not chain roles: assume the role with a RAM user's AccessKey.")
	}
	prefix := "acs:ram::" + c.s.opt.AccountID + ":role/"
	name, ok := strings.CutPrefix(strings.ToLower(arn), prefix)
	role, found := c.s.roles[name]
	if !ok || !found {
		return nil, newErr(404, "EntityNotExist.Role", "The role not exists: %s.", arn)
	}
	for id, tk := range c.s.st.TempKeys {
		if !c.now.Before(tk.Expires) {
			delete(c.s.st.TempKeys, id)
		}
	}
	id := "STS.NT" + randomString(26)
	tk := &tempKey{Secret: randomString(40), Token: "CAES" + randomString(120), Role: name, Allow: role.Allow,
		Expires: c.now.Add(time.Duration(secs) * time.Second)}
	c.s.st.TempKeys[id] = tk
	return obj{
		"AssumedRoleUser": obj{"Arn": prefix + name + "/" + session, "AssumedRoleId": "3" + randomString(16) + ":" + session},
		"Credentials": obj{"AccessKeyId": id, "AccessKeySecret": tk.Secret, "SecurityToken": tk.Token,
			"Expiration": tk.Expires.UTC().Format("2006-01-02T15:04:05Z")},
	}, nil
}

func getCallerIdentity(c *call) (obj, error) {
	acct := c.s.opt.AccountID
	out := obj{"AccountId": acct, "PrincipalId": acct, "UserId": acct, "Arn": "acs:ram::" + acct + ":root", "IdentityType": "Account", "RoleId": ""}
	switch u := c.principal; {
	case strings.HasPrefix(u, "role/"):
		out["IdentityType"], out["Arn"], out["RoleId"] = "AssumedRoleUser", "acs:ram::"+acct+":assumed-role/"+strings.TrimPrefix(u, "role/")+"/ferry", "3"+acct
	case u != "root":
		out["IdentityType"], out["Arn"], out["UserId"] = "RAMUser", "acs:ram::"+acct+":user/"+u, "2"+acct
	}
	return out, nil
}
