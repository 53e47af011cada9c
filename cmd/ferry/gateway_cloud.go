//go:build !agent

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba"
)

// cloudGateway is a gateway a cloud provider started (`--register`): it
// registers itself upward once with its one-time ticket — its certificate's
// fingerprint and its credential key, so the control plane can pin it and
// issue sync credentials — and finds its target disks among the devices
// attached to it (/dev/disk/by-id/virtio-SERIAL, under --device-root),
// asking the control plane which serial is which disk.
type cloudGateway struct {
	url, ticket, root, data string
	client                  *http.Client
	logf                    func(string, ...any)

	mu      sync.Mutex
	bearer  string
	feed    string // the control plane's revocation feed
	serials map[string]string
	fetched time.Time
}

type savedRegistration struct {
	URL         string `json:"url"`
	Bearer      string `json:"bearer"`
	Revocations string `json:"revocations,omitempty"`
}

func (c *cloudGateway) registrationPath() string { return filepath.Join(c.data, "registration.json") }

// register sends the registration, retrying (the control plane or the
// network may not be there yet) until it is accepted or ctx ends. A gateway
// that registered before (a restart) does not again: its ticket is spent.
func (c *cloudGateway) register(ctx context.Context, fingerprint string, key engine.CredentialKey, port int) error {
	if b, err := os.ReadFile(c.registrationPath()); err == nil {
		var s savedRegistration
		if json.Unmarshal(b, &s) == nil && s.URL == c.url && s.Bearer != "" {
			c.mu.Lock()
			c.bearer, c.feed = s.Bearer, s.Revocations
			c.mu.Unlock()
			c.logf("gateway: registered at %s before", c.url)
			return nil
		}
	}
	body, _ := json.Marshal(alibaba.Registration{Token: c.ticket, Fingerprint: fingerprint,
		CredentialKey: base64.StdEncoding.EncodeToString(key), Port: port})
	wait := time.Second
	for {
		var got alibaba.Registered
		status, err := c.post(ctx, "/register", body, &got)
		switch {
		case err == nil && status == http.StatusOK && got.Bearer != "":
			c.mu.Lock()
			c.bearer, c.feed = got.Bearer, got.Revocations
			c.mu.Unlock()
			b, _ := json.Marshal(savedRegistration{URL: c.url, Bearer: got.Bearer, Revocations: got.Revocations})
			if err := os.WriteFile(c.registrationPath(), b, 0o600); err != nil {
				return err
			}
			c.logf("gateway: registered at %s", c.url)
			return nil
		case err == nil && status >= 400 && status < 500:
			return fmt.Errorf("registration at %s refused (%d): the ticket is spent, expired or not this gateway's", c.url, status)
		}
		c.logf("gateway: registration at %s: status %d, %v; again in %s", c.url, status, err, wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

func (c *cloudGateway) post(ctx context.Context, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK && out != nil {
		return resp.StatusCode, json.Unmarshal(b, out)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s", strings.TrimSpace(string(b)))
	}
	return resp.StatusCode, nil
}

// feedEndpoint is the revocation watch's Endpoint: the feed and the
// gateway's bearer, once registered.
func (c *cloudGateway) feedEndpoint() (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.feed, c.bearer
}

// resolve maps a disk id to its device, asking the control plane again
// (at most every two seconds) when the id is not known yet: disks are
// attached to the gateway after it starts.
func (c *cloudGateway) resolve(id string) (string, error) {
	c.mu.Lock()
	serial, ok := c.serials[id]
	stale := time.Since(c.fetched) > 2*time.Second
	c.mu.Unlock()
	if !ok && stale {
		if err := c.fetch(); err != nil {
			return "", fmt.Errorf("disk %s: ask the control plane which device it is: %w", id, err)
		}
		c.mu.Lock()
		serial, ok = c.serials[id]
		c.mu.Unlock()
	}
	if !ok {
		return "", fmt.Errorf("disk %s is not attached to this gateway", id)
	}
	return filepath.Join(c.root, "/dev/disk/by-id", "virtio-"+serial), nil
}

func (c *cloudGateway) fetch() error {
	c.mu.Lock()
	bearer := c.bearer
	c.mu.Unlock()
	if bearer == "" {
		return errors.New("not registered yet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/disks", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var disks []alibaba.GatewayDisk
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&disks); err != nil {
		return err
	}
	m := make(map[string]string, len(disks))
	for _, d := range disks {
		m[d.ID] = d.Serial
	}
	c.mu.Lock()
	c.serials, c.fetched = m, time.Now()
	c.mu.Unlock()
	return nil
}

func newCloudGateway(url, ticket, root, data string) *cloudGateway {
	return &cloudGateway{url: strings.TrimRight(url, "/"), ticket: ticket, root: root, data: data,
		client: &http.Client{Timeout: 30 * time.Second}, logf: log.New(os.Stderr, "", log.LstdFlags).Printf, serials: map[string]string{}}
}
