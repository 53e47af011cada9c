package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
)

// Client speaks the protocol from the agent's side. It only makes outbound
// requests.
type Client struct {
	// Server is the control plane's base URL, e.g. https://ferry.example.com.
	Server     string
	Credential string
	HTTP       *http.Client
}

// Error is a protocol error answered by the server. It unwraps to the
// matching sentinel (ErrTokenExpired, ErrUnauthenticated …) so callers can
// use errors.Is.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server said %d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error {
	return map[string]error{
		CodeTokenMalformed: ErrTokenMalformed, CodeTokenForged: ErrTokenForged, CodeTokenExpired: ErrTokenExpired,
		CodeTokenExhausted: ErrTokenExhausted, CodeTokenRevoked: ErrTokenRevoked, CodeUnauthenticated: ErrUnauthenticated,
		CodeBusy: ErrBusy, CodeSuspended: ErrSuspended,
	}[e.Code]
}

// Retryable reports whether err may succeed if sent again later: network
// failures, server errors and throttling. A refused token, a revoked
// credential or an invalid body never will.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
	}
	for _, never := range []error{ErrTokenMalformed, ErrTokenForged, ErrTokenExpired, ErrTokenExhausted, ErrTokenRevoked, ErrUnauthenticated, ErrNotRegistered, context.Canceled} {
		if errors.Is(err, never) {
			return false
		}
	}
	return true
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 90 * time.Second}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Server, "/")+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Credential != "" {
		req.Header.Set("Authorization", "Bearer "+c.Credential)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
			eb.Error.Code, eb.Error.Message = "http", strings.TrimSpace(string(raw))
		}
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// Register exchanges a registration token for the agent's credential.
func (c *Client) Register(ctx context.Context, token string, host HostInfo) (RegisterResponse, error) {
	var out RegisterResponse
	err := c.do(ctx, http.MethodPost, PathRegister, RegisterRequest{Token: token, Host: host}, &out)
	return out, err
}

// UploadInventory sends a full inventory.
func (c *Client) UploadInventory(ctx context.Context, inv discovery.Inventory) error {
	return c.do(ctx, http.MethodPost, PathInventory, inv, nil)
}

// UploadSamples sends one batch.
func (c *Client) UploadSamples(ctx context.Context, b SamplesBatch) error {
	return c.do(ctx, http.MethodPost, PathSamples, b, nil)
}

// Heartbeat reports liveness.
func (c *Client) Heartbeat(ctx context.Context, hb Heartbeat) (HeartbeatResponse, error) {
	var out HeartbeatResponse
	err := c.do(ctx, http.MethodPost, PathHeartbeat, hb, &out)
	return out, err
}

// PollCommands long-polls for up to wait.
func (c *Client) PollCommands(ctx context.Context, wait time.Duration) ([]Command, error) {
	var out CommandsResponse
	q := url.Values{"wait": {strconv.Itoa(int(wait / time.Second))}}
	err := c.do(ctx, http.MethodGet, PathCommands+"?"+q.Encode(), nil, &out)
	return out.Commands, err
}
