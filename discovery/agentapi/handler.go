package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
)

// Agent is an authenticated agent.
type Agent struct {
	ID       string
	TenantID string
}

// Store persists what agents send. The control plane implements it on its
// database; every method is called with an already verified token or an
// authenticated agent.
type Store interface {
	// RegisterAgent consumes one use of the token claims.TokenID (checking
	// it belongs to claims.TenantID), creates the agent and returns its id
	// and a fresh credential (see NewCredential; keep only HashCredential).
	// Returns ErrTokenExhausted or ErrTokenRevoked.
	RegisterAgent(ctx context.Context, claims Claims, host HostInfo) (agentID, credential string, err error)
	// AuthenticateAgent finds the agent a credential belongs to. Returns
	// ErrUnauthenticated for an unknown or revoked credential.
	AuthenticateAgent(ctx context.Context, credential string) (Agent, error)
	// SaveInventory replaces the agent's latest inventory.
	SaveInventory(ctx context.Context, a Agent, inv discovery.Inventory) error
	// SaveSamples appends a batch; a batch id seen before is a retry and
	// must not be counted twice.
	SaveSamples(ctx context.Context, a Agent, batch SamplesBatch) error
	// Heartbeat records that the agent is alive.
	Heartbeat(ctx context.Context, a Agent, hb Heartbeat) error
	// NextCommands returns, and marks delivered, the agent's pending
	// commands; none is not an error.
	NextCommands(ctx context.Context, a Agent) ([]Command, error)
}

// Config configures the handler. Store and TokenKey are required.
type Config struct {
	Store    Store
	TokenKey []byte // HMAC key registration tokens are signed with
	Now      func() time.Time
	Logger   *slog.Logger
	// MaxBodyBytes caps any request body (default 16 MiB).
	MaxBodyBytes int64
	// MaxSamplesPerBatch caps a samples upload (default 10,000).
	MaxSamplesPerBatch int
	// PollInterval is how often a long-poll asks the Store for commands
	// (default 1 s); MaxPollWait caps how long a poll is held (default 30 s).
	PollInterval time.Duration
	MaxPollWait  time.Duration
	// HeartbeatInterval is what agents are told to beat at (default 60 s).
	HeartbeatInterval time.Duration
}

type handler struct {
	cfg Config
	mux *http.ServeMux
}

// NewHandler returns the /agent/v1/ protocol handler; mount it at
// PathPrefix ("/agent/v1/"). It serves full paths.
func NewHandler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.MaxSamplesPerBatch <= 0 {
		cfg.MaxSamplesPerBatch = 10000
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxPollWait <= 0 {
		cfg.MaxPollWait = 30 * time.Second
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Minute
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST "+PathRegister, h.register)
	h.mux.HandleFunc("POST "+PathInventory, h.authed(h.inventory))
	h.mux.HandleFunc("POST "+PathSamples, h.authed(h.samples))
	h.mux.HandleFunc("POST "+PathHeartbeat, h.authed(h.heartbeat))
	h.mux.HandleFunc("GET "+PathCommands, h.authed(h.commands))
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// busyRetryAfter is the Retry-After (seconds) of a busy answer.
const busyRetryAfter = 1

// apiError is an error already classified for the wire.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func invalid(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, CodeInvalid, fmt.Sprintf(format, a...)}
}

// writeError maps errors to status and code in one place: users read what
// went wrong; internal causes go to the log only.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := http.StatusInternalServerError, CodeInternal, "internal error"
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		status, code, msg = ae.status, ae.code, ae.msg
	case errors.Is(err, ErrTokenMalformed):
		status, code, msg = http.StatusUnauthorized, CodeTokenMalformed, err.Error()
	case errors.Is(err, ErrTokenForged):
		status, code, msg = http.StatusUnauthorized, CodeTokenForged, err.Error()
	case errors.Is(err, ErrTokenExpired):
		status, code, msg = http.StatusUnauthorized, CodeTokenExpired, err.Error()+"; ask an admin for a new token"
	case errors.Is(err, ErrTokenExhausted):
		status, code, msg = http.StatusForbidden, CodeTokenExhausted, err.Error()+"; ask an admin for a new token"
	case errors.Is(err, ErrTokenRevoked):
		status, code, msg = http.StatusForbidden, CodeTokenRevoked, err.Error()
	case errors.Is(err, ErrSuspended):
		status, code, msg = http.StatusForbidden, CodeSuspended, err.Error()
	case errors.Is(err, ErrUnauthenticated):
		status, code, msg = http.StatusUnauthorized, CodeUnauthenticated, err.Error()+"; re-register the agent"
	case errors.Is(err, ErrBusy):
		// Never a 500: the agent retries with backoff (Retryable) and
		// loses nothing, its batches wait in the spool.
		status, code, msg = http.StatusServiceUnavailable, CodeBusy, ErrBusy.Error()+"; retry in a moment"
		w.Header().Set("Retry-After", strconv.Itoa(busyRetryAfter))
		h.cfg.Logger.WarnContext(r.Context(), "agent api busy", "path", r.URL.Path, "err", err)
	default:
		h.cfg.Logger.ErrorContext(r.Context(), "agent api", "path", r.URL.Path, "err", err)
	}
	var body ErrorBody
	body.Error.Code, body.Error.Message = code, msg
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)}
		}
		return invalid("request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("request body has trailing data")
	}
	return nil
}

func (h *handler) authed(next func(http.ResponseWriter, *http.Request, Agent)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || cred == "" {
			h.writeError(w, r, fmt.Errorf("%w: missing bearer credential", ErrUnauthenticated))
			return
		}
		a, err := h.cfg.Store.AuthenticateAgent(r.Context(), cred)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		next(w, r, a)
	}
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	var req RegisterRequest
	if err := h.decode(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	claims, err := VerifyRegistrationToken(h.cfg.TokenKey, req.Token, h.cfg.Now())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Host.Hostname) == "" {
		h.writeError(w, r, invalid("host.hostname is required"))
		return
	}
	id, cred, err := h.cfg.Store.RegisterAgent(r.Context(), claims, req.Host)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, RegisterResponse{AgentID: id, TenantID: claims.TenantID, Credential: cred})
}

func (h *handler) inventory(w http.ResponseWriter, r *http.Request, a Agent) {
	inv, err := decodeInventory(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		h.writeError(w, r, bodyError("inventory", err))
		return
	}
	if inv.Hostname == "" {
		h.writeError(w, r, invalid("inventory.hostname is required"))
		return
	}
	if err := h.cfg.Store.SaveInventory(r.Context(), a, inv); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) samples(w http.ResponseWriter, r *http.Request, a Agent) {
	b, err := decodeSamples(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes), h.cfg.MaxSamplesPerBatch)
	if err != nil {
		h.writeError(w, r, bodyError("samples batch", err))
		return
	}
	if b.BatchID == "" {
		h.writeError(w, r, invalid("batch_id is required"))
		return
	}
	if err := h.cfg.Store.SaveSamples(r.Context(), a, b); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request, a Agent) {
	var hb Heartbeat
	if err := h.decode(w, r, &hb); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.cfg.Store.Heartbeat(r.Context(), a, hb); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, HeartbeatResponse{ServerTime: h.cfg.Now().UTC(), IntervalSeconds: int(h.cfg.HeartbeatInterval / time.Second)})
}

// commands holds the request until a command is pending or the wait runs
// out. It polls the Store rather than subscribing so that any Store (and
// any number of API replicas) works without a notification channel.
func (h *handler) commands(w http.ResponseWriter, r *http.Request, a Agent) {
	wait := time.Duration(0)
	if s := r.URL.Query().Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			h.writeError(w, r, invalid("wait must be a whole number of seconds"))
			return
		}
		wait = min(time.Duration(n)*time.Second, h.cfg.MaxPollWait)
	}
	ctx := r.Context()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(h.cfg.PollInterval)
	defer tick.Stop()
	for {
		cmds, err := h.cfg.Store.NextCommands(ctx, a)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if len(cmds) > 0 || wait == 0 {
			if cmds == nil {
				cmds = []Command{}
			}
			writeJSON(w, http.StatusOK, CommandsResponse{Commands: cmds})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			wait = 0 // one last look, then answer empty
		case <-tick.C:
		}
	}
}
