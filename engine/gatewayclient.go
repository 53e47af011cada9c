package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Session is what the control plane knows of one disk's sync at a gateway:
// the gateway's durable checkpoint, with its times parsed. Times are the
// gateway's clock; zero when unknown.
type Session struct {
	SyncID   string
	Offset   int64 // durably applied up to here (the whole disk once Verified)
	Size     int64
	Verified bool // the target is proven equal to the last completed sync
	// Opened is when the current (or last) sync opened its session,
	// VerifiedAt when a finish last proved the target equal, Updated when the
	// gateway last persisted anything for the disk (progress, for redelivery).
	Opened, VerifiedAt, Updated time.Time
	// WireBytes is how many frame bytes the current sync has delivered (the
	// transfer's progress on the wire; Offset is the scan's).
	WireBytes int64
	// Consistency is how the source of the last completed sync was read
	// (nil: the agent did not say, so not a point in time).
	Consistency *Consistency
}

// GatewayClient is the control plane's handle on a gateway, whether it runs
// in-process (LocalGateway) or on a VM next to the target disks
// (RemoteGateway). The migration steps read a pass's progress and completion
// through Session, never by watching the data path, so any process that can
// reach the gateway can follow any migration.
type GatewayClient interface {
	// Endpoint is where agents send the disks' bytes: a base URL ("" means
	// the control plane the agent talks to) and the certificate fingerprint
	// agents pin ("" for the control plane's own TLS).
	Endpoint() (url, fingerprint string)
	// IssueCredential returns a credential for one disk, valid for ttl,
	// naming its subject (AgentSubject: the gateway's Authorize hook refuses
	// it once that agent is revoked; "" for none) and scoped to its tenant
	// (the gateway binds the disk to it and shares blocks through its
	// content index only among that tenant's disks; "" for none). Errors:
	// ErrInvalid.
	IssueCredential(diskID, subject, tenant string, ttl time.Duration) (string, error)
	// Session reads the disk's sync state. Errors: an error wrapping
	// os.ErrNotExist when the gateway has never seen the disk; transport
	// errors (remote).
	Session(ctx context.Context, diskID string) (Session, error)
}

// LocalGateway is a Gateway served by this process (at /sync/v1/ next to
// the API).
type LocalGateway struct{ G *Gateway }

var (
	_ GatewayClient = LocalGateway{}
	_ GatewayClient = (*RemoteGateway)(nil)
)

// Endpoint implements GatewayClient: agents use the control plane's URL.
func (l LocalGateway) Endpoint() (string, string) { return "", "" }

// IssueCredential implements GatewayClient.
func (l LocalGateway) IssueCredential(diskID, subject, tenant string, ttl time.Duration) (string, error) {
	return l.G.IssueScopedCredential(diskID, subject, tenant, ttl)
}

// Session implements GatewayClient.
func (l LocalGateway) Session(_ context.Context, diskID string) (Session, error) {
	cp, err := l.G.Checkpoint(diskID)
	if err != nil {
		return Session{}, err
	}
	return sessionOf(cp), nil
}

func sessionOf(cp Checkpoint) Session {
	at := func(s string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, s)
		return t
	}
	return Session{SyncID: cp.SyncID, Offset: cp.Offset, Size: cp.Size, Verified: cp.Verified,
		Opened: at(cp.Opened), VerifiedAt: at(cp.VerifiedAt), Updated: at(cp.Updated),
		WireBytes: cp.WireBytes, Consistency: cp.Consistency}
}

// RemoteGateway is a `ferry gateway` elsewhere (a VM in the customer's
// network with the target disks attached), reached over HTTPS with its
// certificate pinned by fingerprint. The control plane holds the gateway's
// credential key (handed over when the gateway registers), so it issues the
// agents' credentials itself and one for its own reads.
type RemoteGateway struct {
	URL         string // https://host:port
	Fingerprint string // SHA-256 of the gateway's certificate
	Key         CredentialKey
	Now         func() time.Time // default time.Now
	// Timeout bounds one read (default 10 s).
	Timeout time.Duration

	client *http.Client
}

// NewRemoteGateway checks the URL and the fingerprint and returns a client.
// Errors: ErrInvalid.
func NewRemoteGateway(rawURL, fingerprint string, key CredentialKey) (*RemoteGateway, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: gateway URL %q: want https://HOST:PORT", ErrInvalid, rawURL)
	}
	tc, err := PinnedTLSConfig(fingerprint)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: gateway %s: no credential key", ErrInvalid, rawURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &RemoteGateway{URL: strings.TrimRight(rawURL, "/"), Fingerprint: fingerprint, Key: key, client: &http.Client{Transport: tr}}, nil
}

func (r *RemoteGateway) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Endpoint implements GatewayClient.
func (r *RemoteGateway) Endpoint() (string, string) { return r.URL, r.Fingerprint }

// IssueCredential implements GatewayClient with the gateway's own key.
func (r *RemoteGateway) IssueCredential(diskID, subject, tenant string, ttl time.Duration) (string, error) {
	if !diskIDPattern.MatchString(diskID) {
		return "", fmt.Errorf("%w: disk id %q: use letters, digits, '.', '_' and '-'", ErrInvalid, diskID)
	}
	return r.Key.IssueScoped(diskID, subject, tenant, r.now(), ttl)
}

// Session implements GatewayClient: GET …/checkpoint with a one-minute
// credential of the control plane's own (ControlPlaneSubject).
func (r *RemoteGateway) Session(ctx context.Context, diskID string) (Session, error) {
	cred, err := r.IssueCredential(diskID, ControlPlaneSubject, "", time.Minute)
	if err != nil {
		return Session{}, err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/sync/v1/disks/"+url.PathEscape(diskID)+"/checkpoint", nil)
	if err != nil {
		return Session{}, err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := r.client.Do(req)
	if err != nil {
		return Session{}, fmt.Errorf("gateway %s: checkpoint of %s: %w", r.URL, diskID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return Session{}, fmt.Errorf("gateway %s: checkpoint of %s: %w", r.URL, diskID, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		json.Unmarshal(body, &ae)
		if ae.Code == CodeNotFound {
			return Session{}, fmt.Errorf("gateway %s: disk %s: %s: %w", r.URL, diskID, ae.Error, os.ErrNotExist)
		}
		return Session{}, &GatewayError{Status: resp.StatusCode, Code: ae.Code, Msg: ae.Error}
	}
	var cp Checkpoint
	if err := json.Unmarshal(body, &cp); err != nil {
		return Session{}, fmt.Errorf("gateway %s: checkpoint of %s: %w", r.URL, diskID, err)
	}
	return sessionOf(cp), nil
}
