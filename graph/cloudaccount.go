package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/graph/model"
)

// checkAccount runs the checks for a cloud account: for a provider with
// credentials, that the stored secret opens with this server's key; then the
// provider's own checks through the registry (the local cloud's are real
// checks of its directory; a provider this build lacks is reported as a
// failed check rather than passed over).
func (r *Resolver) checkAccount(ctx context.Context, a *ent.CloudAccount, tenantID int) []*model.CheckResult {
	var out []*model.CheckResult
	acct := cloud.Account{ID: fmt.Sprint(a.ID), Name: a.Name, Provider: string(a.Provider), Region: a.Region, AccessKeyID: a.AccessKeyID}
	if a.Provider != cloudaccount.ProviderLocal {
		c := &model.CheckResult{Name: "credentials", Ok: true, Message: "AccessKey " + a.AccessKeyID + " stored, secret sealed and readable"}
		if len(a.SecretCiphertext) == 0 {
			c.Ok, c.Message = false, "no AccessKey secret is stored"
		} else if secret, err := r.OpenCloudSecret(ctx, a); err != nil {
			c.Ok, c.Message = false, "the stored secret cannot be opened with this server's key (was keys/secrets.key replaced?)"
		} else {
			acct.Secret = secret
		}
		out = append(out, c)
	}
	clouds := r.Clouds
	if clouds == nil {
		clouds = cloud.NewRegistry()
	}
	for _, c := range clouds.Check(ctx, acct) {
		out = append(out, &model.CheckResult{Name: c.Name, Ok: c.Passed, Message: c.Message})
	}
	return out
}

// OpenCloudSecret opens a cloud account's sealed secret, for the drivers
// (the migration steps open accounts with it too).
func (r *Resolver) OpenCloudSecret(ctx context.Context, a *ent.CloudAccount) ([]byte, error) {
	return r.Secrets.Open(a.SecretCiphertext, cloudAccountAD(a.TenantID))
}

// summarise turns the checks into the account's one-line check message.
func summarise(checks []*model.CheckResult) (bool, string) {
	ok := true
	var parts []string
	for _, c := range checks {
		if !c.Ok {
			ok = false
			parts = append(parts, c.Name+": "+c.Message)
		}
	}
	if ok {
		return true, "all checks passed"
	}
	return false, strings.Join(parts, "; ")
}
