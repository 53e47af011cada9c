package marketplace

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/marketplaceinstance"
	"github.com/ferry-migrate/ferry/ent/tenant"
	"github.com/ferry-migrate/ferry/ent/user"
	"github.com/ferry-migrate/ferry/internal/audit"
	"github.com/ferry-migrate/ferry/internal/trace"
	"github.com/ferry-migrate/ferry/internal/viewer"
	"github.com/ferry-migrate/ferry/internal/web"
)

// expiredReason marks a suspension made by expiredInstance, so that a
// renewal resumes that suspension and no other.
const expiredReason = "the marketplace subscription expired"

// spiTime is the SPI's DateTime format.
const spiTime = "2006-01-02 15:04:05"

// spi serves GET /marketplace/spi?action=…&token=…: the marketplace's
// provisioning calls. Every parameter received is covered by the token.
func (h *Handler) spi(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	act := q.Get("action")
	ctx := r.Context()
	reply := func(status int, body map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		writeJSON(w, body)
	}
	fail := func(status int, msg string) {
		h.cfg.Log.InfoContext(ctx, "marketplace SPI call refused", "action", act, "message", msg, "trace_id", trace.FromContext(ctx))
		reply(status, map[string]any{"success": false, "message": msg, "traceId": trace.FromContext(ctx)})
	}
	if h.cfg.ISVKey == "" {
		fail(http.StatusServiceUnavailable, "the marketplace SPI is not configured on this server (FERRY_MARKETPLACE_ISV_KEY)")
		return
	}
	if !CheckSPIToken(q, h.cfg.ISVKey) {
		fail(http.StatusForbidden, "token does not match the parameters and the ISV key")
		return
	}
	var (
		body map[string]any
		err  error
	)
	switch act {
	case "createInstance":
		body, err = h.createInstance(ctx, q)
	case "renewInstance":
		body, err = h.renewInstance(ctx, q)
	case "upgradeInstance":
		body, err = h.upgradeInstance(ctx, q)
	case "expiredInstance":
		body, err = h.expiredInstance(ctx, q)
	case "releaseInstance":
		body, err = h.releaseInstance(ctx, q)
	case "verify":
		h.verify(w, r, q)
		return
	default:
		fail(http.StatusBadRequest, fmt.Sprintf("unknown action %q: want createInstance, renewInstance, upgradeInstance, expiredInstance, releaseInstance or verify", act))
		return
	}
	if err != nil {
		if ent.IsNotFound(err) {
			fail(http.StatusNotFound, "instance "+q.Get("instanceId")+" not found")
			return
		}
		if bad, ok := err.(badParam); ok {
			fail(http.StatusBadRequest, bad.Error())
			return
		}
		h.cfg.Log.ErrorContext(ctx, "marketplace SPI", "action", act, "error", err, "trace_id", trace.FromContext(ctx))
		if act == "createInstance" {
			// instanceId 0 makes the marketplace call again later.
			reply(http.StatusOK, map[string]any{"instanceId": "0"})
			return
		}
		fail(http.StatusInternalServerError, "internal error (trace id "+trace.FromContext(ctx)+")")
		return
	}
	reply(http.StatusOK, body)
}

type badParam string

func (b badParam) Error() string { return string(b) }

func required(q url.Values, names ...string) error {
	var missing []string
	for _, n := range names {
		if q.Get(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return badParam("missing parameter(s): " + strings.Join(missing, ", "))
	}
	return nil
}

func parseExpiry(q url.Values) (*time.Time, error) {
	s := q.Get("expiredOn")
	if s == "" {
		return nil, nil
	}
	t, err := time.ParseInLocation(spiTime, s, time.UTC)
	if err != nil {
		return nil, badParam(fmt.Sprintf("expiredOn %q: want yyyy-MM-dd HH:mm:ss", s))
	}
	return &t, nil
}

func flat(q url.Values) map[string]string {
	out := map[string]string{}
	for k, v := range q {
		if k != "token" && len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// record writes the SPI call into the tenant's audit log.
func (h *Handler) record(ctx context.Context, tid int, action string, in *ent.MarketplaceInstance, details map[string]any) {
	if details == nil {
		details = map[string]any{}
	}
	details["orderBizId"] = in.OrderBizID
	err := audit.Record(ctx, h.cfg.Client, audit.Entry{TenantID: tid, Actor: "marketplace", Action: "marketplace:" + action,
		ObjectType: "MarketplaceInstance", ObjectID: in.InstanceID, Details: details})
	if err != nil {
		h.cfg.Log.ErrorContext(ctx, "marketplace audit event", "error", err, "trace_id", trace.FromContext(ctx))
	}
}

// createInstance provisions a tenant for an order. Idempotent by
// orderBizId: a repeated call answers the same instance and creates
// nothing. The instance id is the orderBizId, as the marketplace advises.
func (h *Handler) createInstance(ctx context.Context, q url.Values) (map[string]any, error) {
	if err := required(q, "orderBizId", "aliUid"); err != nil {
		return nil, err
	}
	exp, err := parseExpiry(q)
	if err != nil {
		return nil, err
	}
	sys := viewer.SystemContext(ctx)
	c := h.cfg.Client
	biz := q.Get("orderBizId")
	answer := func(in *ent.MarketplaceInstance) map[string]any {
		return map[string]any{"instanceId": in.InstanceID, "appInfo": map[string]any{"frontEndUrl": h.cfg.PublicURL, "adminUrl": h.cfg.PublicURL}}
	}
	if in, err := c.MarketplaceInstance.Query().Where(marketplaceinstance.OrderBizID(biz)).Only(sys); err == nil {
		return answer(in), nil
	} else if !ent.IsNotFound(err) {
		return nil, err
	}
	trial, _ := strconv.ParseBool(q.Get("trial"))
	var in *ent.MarketplaceInstance
	err = withTx(sys, c, func(tx *ent.Client) error {
		t, err := tx.Tenant.Create().SetName(truncate("Alibaba Cloud "+q.Get("aliUid")+" "+biz, 200)).SetSlug(slug("ali-" + biz)).Save(sys)
		if err != nil {
			return err
		}
		ic := tx.MarketplaceInstance.Create().SetOrderBizID(biz).SetInstanceID(biz).SetOrderID(q.Get("orderId")).
			SetAliUID(q.Get("aliUid")).SetSkuID(q.Get("skuId")).SetTrial(trial).SetTenantID(t.ID).SetLastParams(flat(q))
		if exp != nil {
			ic.SetExpiresAt(*exp)
		}
		in, err = ic.Save(sys)
		return err
	})
	if ent.IsConstraintError(err) {
		// The same order, created a moment ago by another call.
		in, err = c.MarketplaceInstance.Query().Where(marketplaceinstance.OrderBizID(biz)).Only(sys)
		if err != nil {
			return nil, err
		}
		return answer(in), nil
	}
	if err != nil {
		return nil, err
	}
	h.record(ctx, in.TenantID, "createInstance", in, map[string]any{"skuId": in.SkuID, "trial": in.Trial})
	h.cfg.Log.InfoContext(ctx, "marketplace instance created", "instance", in.InstanceID, "tenant_id", in.TenantID, "trace_id", trace.FromContext(ctx))
	return answer(in), nil
}

func (h *Handler) instance(ctx context.Context, q url.Values) (*ent.MarketplaceInstance, error) {
	if err := required(q, "instanceId"); err != nil {
		return nil, err
	}
	return h.cfg.Client.MarketplaceInstance.Query().Where(marketplaceinstance.InstanceID(q.Get("instanceId"))).Only(viewer.SystemContext(ctx))
}

// renewInstance moves the expiry and lifts a suspension that the
// expiry caused (and no other).
func (h *Handler) renewInstance(ctx context.Context, q url.Values) (map[string]any, error) {
	in, err := h.instance(ctx, q)
	if err != nil {
		return nil, err
	}
	if in.Status == marketplaceinstance.StatusReleased {
		return nil, badParam("instance " + in.InstanceID + " was released")
	}
	exp, err := parseExpiry(q)
	if err != nil {
		return nil, err
	}
	if exp == nil {
		return nil, badParam("missing parameter(s): expiredOn")
	}
	sys := viewer.SystemContext(ctx)
	err = withTx(sys, h.cfg.Client, func(tx *ent.Client) error {
		if err := tx.MarketplaceInstance.UpdateOne(in).SetExpiresAt(*exp).SetStatus(marketplaceinstance.StatusActive).SetLastParams(flat(q)).Exec(sys); err != nil {
			return err
		}
		_, err := tx.Tenant.Update().Where(tenant.ID(in.TenantID), tenant.SuspendReason(expiredReason)).ClearSuspendedAt().SetSuspendReason("").Save(sys)
		return err
	})
	if err != nil {
		return nil, err
	}
	h.record(ctx, in.TenantID, "renewInstance", in, map[string]any{"expiredOn": q.Get("expiredOn")})
	return map[string]any{"success": true}, nil
}

func (h *Handler) upgradeInstance(ctx context.Context, q url.Values) (map[string]any, error) {
	in, err := h.instance(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := required(q, "skuId"); err != nil {
		return nil, err
	}
	sys := viewer.SystemContext(ctx)
	if err := h.cfg.Client.MarketplaceInstance.UpdateOne(in).SetSkuID(q.Get("skuId")).SetLastParams(flat(q)).Exec(sys); err != nil {
		return nil, err
	}
	h.record(ctx, in.TenantID, "upgradeInstance", in, map[string]any{"from": in.SkuID, "to": q.Get("skuId")})
	return map[string]any{"success": true}, nil
}

// expiredInstance suspends the instance's tenant: nothing is deleted, its
// users and agents are refused until a renewal.
func (h *Handler) expiredInstance(ctx context.Context, q url.Values) (map[string]any, error) {
	in, err := h.instance(ctx, q)
	if err != nil {
		return nil, err
	}
	sys := viewer.SystemContext(ctx)
	err = withTx(sys, h.cfg.Client, func(tx *ent.Client) error {
		if err := tx.MarketplaceInstance.UpdateOne(in).SetStatus(marketplaceinstance.StatusExpired).Exec(sys); err != nil {
			return err
		}
		_, err := tx.Tenant.Update().Where(tenant.ID(in.TenantID), tenant.SuspendedAtIsNil()).
			SetSuspendedAt(h.cfg.Now().UTC()).SetSuspendReason(expiredReason).Save(sys)
		return err
	})
	if err != nil {
		return nil, err
	}
	h.record(ctx, in.TenantID, "expiredInstance", in, nil)
	return map[string]any{"success": true}, nil
}

// releaseInstance ends the subscription: the tenant stays suspended and
// its deletion is scheduled ReleaseAfter from now (nothing is deleted
// here; the platform operator sees the date in the console).
func (h *Handler) releaseInstance(ctx context.Context, q url.Values) (map[string]any, error) {
	in, err := h.instance(ctx, q)
	if err != nil {
		return nil, err
	}
	sys := viewer.SystemContext(ctx)
	now := h.cfg.Now().UTC()
	due := now.Add(h.cfg.ReleaseAfter)
	err = withTx(sys, h.cfg.Client, func(tx *ent.Client) error {
		if err := tx.MarketplaceInstance.UpdateOne(in).SetStatus(marketplaceinstance.StatusReleased).Exec(sys); err != nil {
			return err
		}
		if _, err := tx.Tenant.Update().Where(tenant.ID(in.TenantID), tenant.SuspendedAtIsNil()).
			SetSuspendedAt(now).SetSuspendReason("the marketplace subscription was released").Save(sys); err != nil {
			return err
		}
		_, err := tx.Tenant.Update().Where(tenant.ID(in.TenantID)).SetDeletionScheduledAt(due).Save(sys)
		return err
	})
	if err != nil {
		return nil, err
	}
	h.record(ctx, in.TenantID, "releaseInstance", in, map[string]any{"deletionDue": due.Format(time.RFC3339)})
	return map[string]any{"success": true}, nil
}

// verify is single sign-on from the marketplace console: a token-checked,
// fresh (timestamp in milliseconds or seconds) link that signs the
// instance's user in and sends the browser to the UI.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request, q url.Values) {
	ctx := r.Context()
	if err := required(q, "instanceId", "aliUid", "timestamp"); err != nil {
		web.WriteError(w, r, badRequest(err.Error()))
		return
	}
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if err != nil {
		web.WriteError(w, r, badRequest("timestamp: want Unix time"))
		return
	}
	at := time.Unix(ts, 0)
	if ts > 1e12 {
		at = time.UnixMilli(ts)
	}
	if d := h.cfg.Now().Sub(at); d > h.cfg.SSOMaxAge || d < -time.Minute {
		web.WriteError(w, r, forbidden("this sign-in link has expired: open the product again from the marketplace console"))
		return
	}
	in, err := h.instance(ctx, q)
	if err != nil || in.AliUID != q.Get("aliUid") {
		web.WriteError(w, r, forbidden("this sign-in link names no instance of this account"))
		return
	}
	sys := viewer.SystemContext(ctx)
	u, err := h.cfg.Client.User.Query().Where(user.ExternalID(externalID(in.AliUID))).WithTenant().Only(sys)
	if ent.IsNotFound(err) {
		u, err = h.userFor(ctx, UserInfo{AliUID: in.AliUID, Name: q.Get("name"), Email: q.Get("email")})
		if err == nil {
			u, err = h.cfg.Client.User.Query().Where(user.ID(u.ID)).WithTenant().Only(sys)
		}
	}
	if err != nil {
		web.WriteError(w, r, err)
		return
	}
	if err := web.Suspended(u.Edges.Tenant); err != nil {
		web.WriteError(w, r, err)
		return
	}
	if _, err := h.cfg.StartSession(w, r, u, "marketplace:verify", map[string]any{"instanceId": in.InstanceID}); err != nil {
		web.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusFound)
}
