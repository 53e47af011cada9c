package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/internal/secrets"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// checkAccount runs the checks for a cloud account: for a provider with
// credentials, that the stored secret opens with this server's key; then the
// provider's own checks through the registry (the local cloud's are real
// checks of its directory; a provider this build lacks is reported as a
// failed check rather than passed over).
func (r *Resolver) checkAccount(ctx context.Context, a *ent.CloudAccount) []*model.CheckResult {
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
	return r.Secrets.Open(a.SecretCiphertext, cloudAccountAD(a.TenantID, a.ID))
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

// ResealCloudSecrets moves cloud secrets sealed before they were bound to
// their row (associated data naming the tenant only) to the row-bound
// associated data (account id and tenant), and reports how many it moved.
// It runs at start-up, after the schema migrations, so that only row-bound
// secrets exist afterwards and Open never needs the old form. A secret that
// opens under neither (another key, a corrupted row) is left as it is and
// counted in unreadable: checkCloudAccount then reports it.
func ResealCloudSecrets(ctx context.Context, client *ent.Client, box *secrets.Box) (moved, unreadable int, err error) {
	ctx = viewer.SystemContext(ctx)
	last := 0
	for {
		page, err := client.CloudAccount.Query().Where(cloudaccount.IDGT(last), cloudaccount.SecretCiphertextNotNil()).
			Order(ent.Asc(cloudaccount.FieldID)).Limit(500).All(ctx)
		if err != nil {
			return moved, unreadable, fmt.Errorf("reseal cloud secrets: %w", err)
		}
		for _, a := range page {
			last = a.ID
			if len(a.SecretCiphertext) == 0 {
				continue
			}
			if _, err := box.Open(a.SecretCiphertext, cloudAccountAD(a.TenantID, a.ID)); err == nil {
				continue
			}
			plain, err := box.Open(a.SecretCiphertext, legacyCloudAccountAD(a.TenantID))
			if err != nil {
				unreadable++
				continue
			}
			// Conditional on the old ciphertext: a concurrent writer wins.
			n, err := client.CloudAccount.Update().
				Where(cloudaccount.ID(a.ID), cloudaccount.SecretCiphertext(a.SecretCiphertext)).
				SetSecretCiphertext(box.Seal(plain, cloudAccountAD(a.TenantID, a.ID))).Save(ctx)
			if err != nil {
				return moved, unreadable, fmt.Errorf("reseal cloud account %d: %w", a.ID, err)
			}
			moved += n
		}
		if len(page) < 500 {
			return moved, unreadable, nil
		}
	}
}
