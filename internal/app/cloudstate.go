package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/ent/cloudrecord"
	"github.com/ferry-migrate/ferry/ent/cloudticket"
	"github.com/ferry-migrate/ferry/internal/secrets"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// cloudStore is a cloud provider's record store for one account, in the
// database (so every process of the control plane sees the same state):
// each value sealed with the server's key, bound to its row (tenant,
// account, key).
type cloudStore struct {
	client  *ent.Client
	box     *secrets.Box
	tenant  int
	account int
}

var _ alibaba.Store = (*cloudStore)(nil)

// openCloudStore finds the account's tenant; the caller may have no viewer
// (the callback routes).
func openCloudStore(ctx context.Context, client *ent.Client, box *secrets.Box, accountID string) (*cloudStore, error) {
	id, err := strconv.Atoi(accountID)
	if err != nil {
		return nil, fmt.Errorf("cloud account id %q: %w", accountID, cloud.ErrInvalid)
	}
	a, err := client.CloudAccount.Query().Where(cloudaccount.ID(id)).Select(cloudaccount.FieldTenantID).Only(viewer.SystemContext(ctx))
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("cloud account %d: %w", id, cloud.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &cloudStore{client: client, box: box, tenant: a.TenantID, account: id}, nil
}

func (s *cloudStore) ctx(ctx context.Context) context.Context {
	return viewer.TenantContext(ctx, s.tenant)
}

func (s *cloudStore) ad(key string) []byte {
	return []byte(fmt.Sprintf("cloud_record:%d:%s:tenant:%d", s.account, key, s.tenant))
}

func (s *cloudStore) Get(ctx context.Context, key string) ([]byte, error) {
	r, err := s.client.CloudRecord.Query().Where(cloudrecord.AccountID(s.account), cloudrecord.Key(key)).Only(s.ctx(ctx))
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("record %s: %w", key, cloud.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return s.box.Open(r.Value, s.ad(key))
}

func (s *cloudStore) Put(ctx context.Context, key string, value []byte) error {
	return s.client.CloudRecord.Create().SetTenantID(s.tenant).SetAccountID(s.account).SetKey(key).SetValue(s.box.Seal(value, s.ad(key))).
		OnConflictColumns(cloudrecord.FieldAccountID, cloudrecord.FieldKey).UpdateValue().UpdateUpdatedAt().Exec(s.ctx(ctx))
}

func (s *cloudStore) Delete(ctx context.Context, key string) error {
	_, err := s.client.CloudRecord.Delete().Where(cloudrecord.AccountID(s.account), cloudrecord.Key(key)).Exec(s.ctx(ctx))
	return err
}

func (s *cloudStore) List(ctx context.Context, prefix string) ([]alibaba.Record, error) {
	rs, err := s.client.CloudRecord.Query().Where(cloudrecord.AccountID(s.account), cloudrecord.KeyHasPrefix(prefix)).
		Order(ent.Asc(cloudrecord.FieldKey)).All(s.ctx(ctx))
	if err != nil {
		return nil, err
	}
	out := make([]alibaba.Record, 0, len(rs))
	for _, r := range rs {
		v, err := s.box.Open(r.Value, s.ad(r.Key))
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", r.Key, err)
		}
		out = append(out, alibaba.Record{Key: r.Key, Value: v})
	}
	return out, nil
}

// cloudTickets are the one-time tokens of the callback routes, in the
// database: a token is "frc_" and an HMAC (the server's key) of its row, so
// it can be minted again before it is used without being stored; only its
// SHA-256 is kept, to find the row when it is redeemed.
type cloudTickets struct {
	client *ent.Client
	key    []byte
	now    func() time.Time
}

var _ alibaba.Tickets = (*cloudTickets)(nil)

func (t *cloudTickets) token(r *ent.CloudTicket) string {
	m := hmac.New(sha256.New, t.key)
	fmt.Fprintf(m, "cloud_ticket:%d:%d:%d:%s:%d", r.ID, r.TenantID, r.AccountID, r.Key, r.ExpiresAt.UnixNano())
	return "frc_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func hashOf(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func (t *cloudTickets) Mint(ctx context.Context, accountID, key string, ttl time.Duration) (string, error) {
	id, err := strconv.Atoi(accountID)
	if err != nil {
		return "", fmt.Errorf("cloud account id %q: %w", accountID, cloud.ErrInvalid)
	}
	sys := viewer.SystemContext(ctx)
	a, err := t.client.CloudAccount.Query().Where(cloudaccount.ID(id)).Select(cloudaccount.FieldTenantID).Only(sys)
	if err != nil {
		return "", err
	}
	tctx := viewer.TenantContext(ctx, a.TenantID)
	now := t.now()
	r, err := t.client.CloudTicket.Query().Where(cloudticket.AccountID(id), cloudticket.Key(key), cloudticket.UsedAtIsNil(),
		cloudticket.ExpiresAtGT(now)).Order(ent.Desc(cloudticket.FieldID)).First(tctx)
	if ent.IsNotFound(err) {
		r, err = t.client.CloudTicket.Create().SetTenantID(a.TenantID).SetAccountID(id).SetKey(key).
			SetExpiresAt(now.Add(ttl).UTC().Truncate(time.Microsecond)).Save(tctx)
		if err != nil {
			return "", err
		}
		tok := t.token(r)
		if err := t.client.CloudTicket.UpdateOne(r).SetTokenHash(hashOf(tok)).Exec(tctx); err != nil {
			return "", err
		}
		return tok, nil
	}
	if err != nil {
		return "", err
	}
	return t.token(r), nil
}

func (t *cloudTickets) Redeem(ctx context.Context, token string) (string, string, error) {
	sys := viewer.SystemContext(ctx)
	r, err := t.client.CloudTicket.Query().Where(cloudticket.TokenHash(hashOf(token))).Only(sys)
	if ent.IsNotFound(err) {
		return "", "", fmt.Errorf("ticket: %w", cloud.ErrNotFound)
	}
	if err != nil {
		return "", "", err
	}
	// The row is found by the hash; the HMAC proves this server minted it.
	if !hmac.Equal([]byte(t.token(r)), []byte(token)) {
		return "", "", fmt.Errorf("ticket: %w", cloud.ErrNotFound)
	}
	if !t.now().Before(r.ExpiresAt) {
		return "", "", fmt.Errorf("ticket: %w (expired)", cloud.ErrNotFound)
	}
	n, err := t.client.CloudTicket.Update().Where(cloudticket.ID(r.ID), cloudticket.UsedAtIsNil()).SetUsedAt(t.now()).
		Save(viewer.TenantContext(ctx, r.TenantID))
	if err != nil {
		return "", "", err
	}
	if n == 0 {
		return "", "", fmt.Errorf("ticket: %w (already used)", cloud.ErrConflict)
	}
	return strconv.Itoa(r.AccountID), r.Key, nil
}

// callbackPrefix is where the instances providers start call back.
const callbackPrefix = "/cloud/v1/alibaba"

// alibabaProvider wires the Alibaba provider: its records and tickets in
// the database, its callbacks under callbackPrefix of the public URL.
func (a *App) alibabaProvider() *alibaba.Provider {
	p := &alibaba.Provider{
		Stores: func(ctx context.Context, accountID string) (alibaba.Store, error) {
			return openCloudStore(ctx, a.DB.Client, a.Secrets, accountID)
		},
		Tickets: &cloudTickets{client: a.DB.Client, key: a.Key, now: a.Config.Now},
		// A launch is healthy only once its instance reached a login prompt
		// on its serial console; an account turns this off with
		// boot_check=off, and the launch's boot check then says so.
		Options: alibaba.Options{BootCheck: true},
	}
	if u := strings.TrimRight(a.Config.PublicURL, "/"); u != "" {
		p.CallbackURL = u + callbackPrefix
		p.RevocationsURL = u + engine.RevocationsPath
	}
	return p
}
