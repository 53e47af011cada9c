package alibaba

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud"
)

// The callback protocol: what instances the provider starts send upward.

// Registration is what a gateway sends once it has its certificate and
// credential key: POST {CallbackURL}/register.
type Registration struct {
	Token         string `json:"token"`
	Fingerprint   string `json:"fingerprint"`    // SHA-256 of its TLS certificate
	CredentialKey string `json:"credential_key"` // Base64: the key sync credentials are signed with
	Port          int    `json:"port"`
}

// Registered is the answer: a bearer for the gateway's later calls
// (GET {CallbackURL}/disks, the revocation feed), and where the feed is.
type Registered struct {
	Bearer string `json:"bearer"`
	// Revocations is the control plane's revocation feed
	// (engine.RevocationsPath); empty from a control plane without one.
	Revocations string `json:"revocations,omitempty"`
}

// GatewayDisk tells a gateway which attached device is a Ferry disk: the
// ECS serial its /dev/disk/by-id/virtio-SERIAL link carries.
type GatewayDisk struct {
	ID     string `json:"id"`
	Serial string `json:"serial"`
}

// RepairReport is what a repair instance sends once it has inspected and
// adapted the launched disks: POST {CallbackURL}/report.
type RepairReport struct {
	Token string `json:"token"`
	// Checks are per disk (Disk is the disk's serial) and of the
	// adaptation (Disk empty).
	Checks []cloud.Check `json:"checks"`
	// OS is what the adaptation found ("debian 12"), "" when no Linux root.
	OS string `json:"os,omitempty"`
	// Changes are the adaptation's, one line each.
	Changes []string `json:"changes,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// ECSSerial is the serial ECS gives a cloud disk inside the guest.
func ECSSerial(ecsDiskID string) string { return strings.TrimPrefix(ecsDiskID, "d-") }

// Handler serves the callbacks of the provider's instances, to be mounted
// (with its prefix stripped) at CallbackURL's path. A registration or a
// report presents a ticket the provider minted for exactly that instance
// (one account, one record, once, before it expires); the gateway's later
// calls present the bearer its registration returned. No session, no API
// token: these routes take nothing else.
func (p *Provider) Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(path, "/register"):
			p.serveRegister(w, r, log)
		case r.Method == http.MethodGet && strings.HasSuffix(path, "/disks"):
			p.serveDisks(w, r, log)
		case r.Method == http.MethodPost && strings.HasSuffix(path, "/report"):
			p.serveReport(w, r, log)
		default:
			http.Error(w, "no such callback: "+r.Method+" "+path, http.StatusNotFound)
		}
	})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, format string, args ...any) {
	reply(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, cloud.ErrNotFound):
		return http.StatusUnauthorized
	case errors.Is(err, cloud.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, cloud.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// redeem uses the ticket and opens the account's store.
func (p *Provider) redeem(ctx context.Context, token string) (Store, string, string, error) {
	if p.Tickets == nil || p.Stores == nil {
		return nil, "", "", fmt.Errorf("callbacks are not wired: %w", cloud.ErrUnsupported)
	}
	if !strings.HasPrefix(token, "frc_") || len(token) > 200 {
		return nil, "", "", fmt.Errorf("ticket: %w", cloud.ErrNotFound)
	}
	acct, key, err := p.Tickets.Redeem(ctx, token)
	if err != nil {
		return nil, "", "", err
	}
	st, err := p.Stores(ctx, acct)
	return st, acct, key, err
}

func (p *Provider) serveRegister(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
	var reg Registration
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&reg); err != nil {
		refuse(w, http.StatusBadRequest, "registration: %v", err)
		return
	}
	key, err := base64.StdEncoding.DecodeString(reg.CredentialKey)
	if err != nil || len(key) < 32 || reg.Fingerprint == "" || reg.Port <= 0 || reg.Port > 65535 {
		refuse(w, http.StatusBadRequest, "registration: want a fingerprint, a Base64 credential key of at least 32 bytes and a port")
		return
	}
	ctx := r.Context()
	st, acct, tkey, err := p.redeem(ctx, reg.Token)
	if err != nil {
		log.WarnContext(ctx, "gateway registration refused", "error", err.Error(), "remote", r.RemoteAddr)
		refuse(w, statusOf(err), "registration refused: %v", err)
		return
	}
	rest, ok := strings.CutPrefix(tkey, "gateway/")
	mid, nonce, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		refuse(w, http.StatusUnauthorized, "registration refused: the ticket is not a gateway's")
		return
	}
	secret, sum := bearer()
	var g gatewayRec
	if err := getJSON(ctx, st, "gateway/"+mid, &g); err != nil || g.Nonce != nonce {
		refuse(w, http.StatusConflict, "registration refused: this gateway was deleted")
		return
	}
	rec := registration{Fingerprint: reg.Fingerprint, CredentialKey: key, Port: reg.Port, BearerSum: sum, At: time.Now().UTC()}
	if err := putJSON(ctx, st, "registration/"+mid+"/"+nonce, rec); err != nil {
		refuse(w, http.StatusInternalServerError, "registration: %v", err)
		return
	}
	log.InfoContext(ctx, "gateway registered", "account", acct, "migration", mid, "instance", g.Instance, "fingerprint", reg.Fingerprint)
	b := base64.RawURLEncoding
	reply(w, http.StatusOK, Registered{Bearer: b.EncodeToString([]byte(acct)) + "." + b.EncodeToString([]byte(mid)) + "." + secret,
		Revocations: p.RevocationsURL})
}

// errBearer is every refusal of a gateway's bearer: one answer, whatever
// was wrong with it.
var errBearer = fmt.Errorf("a gateway's bearer is required: %w", cloud.ErrNotFound)

// AuthenticateGateway checks a gateway's bearer (the Authorization header's
// value) and returns the cloud account and the migration of the gateway
// it was issued to. Only the bearer's SHA-256 is kept, in the gateway's
// (sealed) registration record; deleting the gateway deletes the record,
// which revokes the bearer. Errors: cloud.ErrNotFound for any bearer that
// is not a live gateway's.
func (p *Provider) AuthenticateGateway(ctx context.Context, header string) (account, migration string, err error) {
	acct, mid, _, err := p.gatewayOf(ctx, header)
	return acct, mid, err
}

func (p *Provider) gatewayOf(ctx context.Context, header string) (account, migration string, g gatewayRec, err error) {
	tok, _ := strings.CutPrefix(header, "Bearer ")
	parts := strings.Split(tok, ".")
	b := base64.RawURLEncoding
	var acct, mid []byte
	if len(parts) == 3 && len(tok) <= 512 {
		acct, err = b.DecodeString(parts[0])
		if err == nil {
			mid, err = b.DecodeString(parts[1])
		}
	}
	if len(parts) != 3 || len(tok) > 512 || err != nil || p.Stores == nil || len(acct) == 0 {
		return "", "", g, errBearer
	}
	st, err := p.Stores(ctx, string(acct))
	if err != nil {
		return "", "", g, errBearer
	}
	if err := getJSON(ctx, st, "gateway/"+string(mid), &g); err != nil {
		return "", "", g, errBearer
	}
	var reg registration
	if err := getJSON(ctx, st, "registration/"+string(mid)+"/"+g.Nonce, &reg); err != nil || reg.BearerSum == "" ||
		subtle.ConstantTimeCompare([]byte(bearerSum(parts[2])), []byte(reg.BearerSum)) != 1 {
		return "", "", g, errBearer
	}
	return string(acct), string(mid), g, nil
}

func (p *Provider) serveDisks(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
	_, _, g, err := p.gatewayOf(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		refuse(w, http.StatusUnauthorized, "a gateway's bearer is required")
		return
	}
	out := []GatewayDisk{}
	for id, ecsID := range g.Disks {
		out = append(out, GatewayDisk{ID: id, Serial: ECSSerial(ecsID)})
	}
	reply(w, http.StatusOK, out)
}

func (p *Provider) serveReport(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
	var rep RepairReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&rep); err != nil {
		refuse(w, http.StatusBadRequest, "report: %v", err)
		return
	}
	ctx := r.Context()
	st, acct, key, err := p.redeem(ctx, rep.Token)
	if err != nil {
		log.WarnContext(ctx, "repair report refused", "error", err.Error(), "remote", r.RemoteAddr)
		refuse(w, statusOf(err), "report refused: %v", err)
		return
	}
	rest, ok := strings.CutPrefix(key, "machine/")
	id, nonce, ok2 := strings.Cut(rest, "/repair/")
	if !ok || !ok2 {
		refuse(w, http.StatusUnauthorized, "report refused: the ticket is not a repair instance's")
		return
	}
	var m machineRec
	if err := getJSON(ctx, st, machineKey(id), &m); err != nil || m.Nonce != nonce {
		refuse(w, http.StatusConflict, "report refused: this launch was discarded")
		return
	}
	rep.Token = ""
	if err := putJSON(ctx, st, reportKey(id, nonce), rep); err != nil {
		refuse(w, http.StatusInternalServerError, "report: %v", err)
		return
	}
	log.InfoContext(ctx, "repair reported", "account", acct, "machine", id, "os", rep.OS, "changes", len(rep.Changes), "error", rep.Error)
	reply(w, http.StatusOK, map[string]string{})
}
