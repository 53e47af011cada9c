// Package alibaba is Ferry's Alibaba Cloud provider: migrations to ECS, with
// target disks and recovery points as ECS disks and snapshots, launches
// through a repair instance, an image and RunInstances, and a gateway
// instance in the customer's VPC. Every cloud call is made here, by the
// control plane, through alibaba-cloud-sdk-go's ecs client; the gateway
// holds no AccessKey.
//
// This file and calls.go are the call layer: every call is idempotent (a
// ClientToken where ECS takes one, a look before acting where it does not),
// lists are followed to their last page, Throttling and ServiceUnavailable
// are retried with backoff, and each request is reported with its RequestId
// to the migration's log (cloud.LogCall). Credentials are an AccessKey
// pair, temporary STS credentials, or a RAM role assumed with the pair.
package alibaba

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sts"
	"github.com/ferry-migrate/ferry/engine/cloud"
)

// Credentials are how the control plane signs its calls.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	// SecurityToken makes the pair temporary STS credentials.
	SecurityToken string
	// RoleARN, when set, makes every call with a session of that RAM role
	// (acs:ram::ACCOUNT:role/NAME), assumed with the pair through STS
	// AssumeRole and renewed before it expires: the key itself then needs
	// only sts:AssumeRole.
	RoleARN         string
	RoleSessionName string        // default "ferry"
	SessionDuration time.Duration // default 1 h (900 s – 1 h)
}

// Retry says how calls are repeated after a throttled, unavailable or
// unanswered request.
type Retry struct {
	Attempts int           // default 6
	Base     time.Duration // first wait, doubled each time (default 200 ms), with jitter
	Max      time.Duration // longest wait (default 10 s)
}

// Config opens a Client.
type Config struct {
	Region string // "cn-hangzhou"
	// Endpoint replaces the region's public ECS endpoint, as "host:port"
	// (an emulator, or a VPC endpoint). STSEndpoint likewise for AssumeRole
	// (default Endpoint when that is set, else sts.aliyuncs.com).
	Endpoint    string
	STSEndpoint string
	// Scheme is "https" (default) or "http" (an emulator on loopback).
	Scheme      string
	Credentials Credentials
	Retry       Retry
	// Timeout bounds one request (default 30 s; less when the context's
	// deadline is nearer).
	Timeout time.Duration
	// Sleep waits between attempts (tests); default a timer that ends with
	// the context.
	Sleep func(ctx context.Context, d time.Duration) error
	// Poll is the first interval between looks at a resource in an
	// asynchronous state (default 1 s, growing to 8×).
	Poll time.Duration
}

// Client calls ECS for one account and region. It is safe for concurrent
// use: the SDK's client is not (it sets its HTTP timeout per request), so
// each call borrows one from a small pool.
type Client struct {
	cfg   Config
	creds credentials.CredentialsProvider
	role  *roleProvider
	pool  chan *ecs.Client
	mu    sync.Mutex
	made  int
}

const poolSize = 8

// New checks cfg and returns a Client. It makes no call.
func New(cfg Config) (*Client, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("alibaba: a region is required: %w", cloud.ErrInvalid)
	}
	c := cfg.Credentials
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return nil, fmt.Errorf("alibaba: an AccessKey ID and secret are required: %w", cloud.ErrInvalid)
	}
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "acs:ram::") {
		return nil, fmt.Errorf("alibaba: role ARN %q: want acs:ram::ACCOUNT:role/NAME: %w", c.RoleARN, cloud.ErrInvalid)
	}
	switch strings.ToLower(cfg.Scheme) {
	case "":
		cfg.Scheme = "https"
	case "http", "https":
		cfg.Scheme = strings.ToLower(cfg.Scheme)
	default:
		return nil, fmt.Errorf("alibaba: scheme %q: want https or http: %w", cfg.Scheme, cloud.ErrInvalid)
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry.Attempts = 6
	}
	if cfg.Retry.Base <= 0 {
		cfg.Retry.Base = 200 * time.Millisecond
	}
	if cfg.Retry.Max <= 0 {
		cfg.Retry.Max = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.STSEndpoint == "" {
		cfg.STSEndpoint = cfg.Endpoint
	}
	cl := &Client{cfg: cfg, pool: make(chan *ecs.Client, poolSize)}
	switch {
	case c.RoleARN != "":
		cl.role = &roleProvider{cfg: cfg}
		cl.creds = cl.role
	case c.SecurityToken != "":
		cl.creds = credentials.NewStaticSTSCredentialsProvider(c.AccessKeyID, c.AccessKeySecret, c.SecurityToken)
	default:
		cl.creds = credentials.NewStaticAKCredentialsProvider(c.AccessKeyID, c.AccessKeySecret)
	}
	return cl, nil
}

// Region is the client's region.
func (c *Client) Region() string { return c.cfg.Region }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) sdkConfig() *sdk.Config {
	conf := sdk.NewConfig()
	conf.AutoRetry = false // retries are ours, so that each is logged with its RequestId
	conf.Scheme = strings.ToUpper(c.cfg.Scheme)
	return conf
}

// borrow takes an SDK client from the pool, making one when none is free
// and fewer than poolSize exist.
func (c *Client) borrow(ctx context.Context) (*ecs.Client, error) {
	select {
	case e := <-c.pool:
		return e, nil
	default:
	}
	c.mu.Lock()
	if c.made < poolSize {
		c.made++
		c.mu.Unlock()
		e, err := ecs.NewClientWithOptions(c.cfg.Region, c.sdkConfig(), c.creds)
		if err != nil {
			c.mu.Lock()
			c.made--
			c.mu.Unlock()
			return nil, err
		}
		if c.cfg.Endpoint != "" {
			e.Domain = c.cfg.Endpoint
		}
		return e, nil
	}
	c.mu.Unlock()
	select {
	case e := <-c.pool:
		return e, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) giveBack(e *ecs.Client) { c.pool <- e }

// request is what every SDK request has.
type request = requests.AcsRequest

// op describes one call for do.
type op struct {
	action string
	object string
	// idempotent: repeating the request cannot do the thing twice (a
	// ClientToken, a Describe, a delete of what is already gone).
	idempotent bool
	// ok lets an error code count as success ("already deleted").
	ok func(code string) bool
}

// do runs call with retries and logs each attempt. call gets a fresh SDK
// client and returns the RequestId and what the call made or found (for the
// log).
func (c *Client) do(ctx context.Context, o op, req request, call func(e *ecs.Client) (reqID, result string, err error)) error {
	if c.role != nil {
		if err := c.role.refresh(ctx); err != nil {
			return err
		}
	}
	var last *APIError
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return fmt.Errorf("%w (last: %w)", err, last)
			}
			return err
		}
		timeout := c.cfg.Timeout
		if dl, ok := ctx.Deadline(); ok {
			if rem := time.Until(dl); rem < timeout {
				timeout = max(rem, time.Millisecond)
			}
		}
		req.SetReadTimeout(timeout)
		req.SetScheme(c.cfg.Scheme)
		e, err := c.borrow(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		reqID, result, err := call(e)
		c.giveBack(e)
		rec := cloud.APICall{Provider: "alibaba", Action: o.action, Object: o.object, Result: result, RequestID: reqID,
			Attempt: attempt, Duration: time.Since(start)}
		if err == nil {
			cloud.LogCall(ctx, rec)
			return nil
		}
		ae := classify(o.action, o.object, err)
		rec.RequestID, rec.Code, rec.Message = ae.RequestID, ae.Code, ae.Message
		if rec.Code == "" {
			rec.Code, rec.Message = "NoAnswer", ae.cause.Error()
		}
		if o.ok != nil && ae.Code != "" && o.ok(ae.Code) {
			cloud.LogCall(ctx, rec)
			return nil
		}
		if c.role != nil && ae.Code == "InvalidSecurityToken.Expired" && attempt < c.cfg.Retry.Attempts {
			// Our clock and the cloud's disagree about the session: open a
			// new one and ask again (nothing was done).
			cloud.LogCall(ctx, rec)
			c.role.invalidate()
			if err := c.role.refresh(ctx); err != nil {
				return err
			}
			continue
		}
		if !ae.retryable(o.idempotent) || attempt >= c.cfg.Retry.Attempts {
			cloud.LogCall(ctx, rec)
			return ae
		}
		wait := c.backoff(attempt)
		rec.RetryIn = wait
		cloud.LogCall(ctx, rec)
		last = ae
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("%w (last: %w)", err, ae)
		}
	}
}

// backoff is the wait after the n-th failed attempt: Base·2^(n-1) capped at
// Max, with ±25 % jitter so that workers throttled together spread out.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.Retry.Base << (n - 1)
	if d > c.cfg.Retry.Max || d <= 0 {
		d = c.cfg.Retry.Max
	}
	j := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + j
}

// roleProvider is the RAM-role variant: it assumes the role with the
// AccessKey pair through the SDK's STS client and hands the session's
// credentials to the ECS client, renewing them three minutes before they
// expire. refresh runs before each call, with the call's context, so that
// AssumeRole is retried and logged like any other call.
type roleProvider struct {
	cfg     Config
	renew   sync.Mutex // one AssumeRole at a time
	mu      sync.Mutex
	cur     *credentials.Credentials
	expires time.Time
}

func (p *roleProvider) GetProviderName() string { return "ferry_ram_role_arn" }

func (p *roleProvider) GetCredentials() (*credentials.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil, fmt.Errorf("alibaba: the role session of %s is not open: %w", p.cfg.Credentials.RoleARN, ErrDenied)
	}
	cc := *p.cur
	return &cc, nil
}

func (p *roleProvider) invalidate() {
	p.mu.Lock()
	p.cur = nil
	p.mu.Unlock()
}

func (p *roleProvider) refresh(ctx context.Context) error {
	p.renew.Lock()
	defer p.renew.Unlock()
	p.mu.Lock()
	fresh := p.cur != nil && time.Until(p.expires) > 3*time.Minute
	p.mu.Unlock()
	if fresh {
		return nil
	}
	cr := p.cfg.Credentials
	client, err := sts.NewClientWithOptions(p.cfg.Region, func() *sdk.Config {
		conf := sdk.NewConfig()
		conf.AutoRetry = false
		conf.Scheme = strings.ToUpper(p.cfg.Scheme)
		return conf
	}(), credentials.NewStaticAKCredentialsProvider(cr.AccessKeyID, cr.AccessKeySecret))
	if err != nil {
		return err
	}
	client.Domain = p.cfg.STSEndpoint
	if client.Domain == "" {
		client.Domain = "sts.aliyuncs.com"
	}
	name := cr.RoleSessionName
	if name == "" {
		name = "ferry"
	}
	dur := cr.SessionDuration
	if dur <= 0 {
		dur = time.Hour
	}
	dur = min(max(dur, 15*time.Minute), time.Hour)
	req := sts.CreateAssumeRoleRequest()
	req.RoleArn, req.RoleSessionName = cr.RoleARN, name
	req.DurationSeconds = requests.NewInteger(int(dur / time.Second))
	helper := &Client{cfg: p.cfg}
	var resp *sts.AssumeRoleResponse
	err = helper.doSTS(ctx, op{action: "AssumeRole", object: cr.RoleARN, idempotent: true}, req, func() (string, string, error) {
		r, err := client.AssumeRole(req)
		if err != nil {
			return "", "", err
		}
		resp = r
		return r.RequestId, r.Credentials.AccessKeyId, nil
	})
	if err != nil {
		return err
	}
	exp, err := time.Parse("2006-01-02T15:04:05Z", resp.Credentials.Expiration)
	if err != nil {
		return fmt.Errorf("alibaba: AssumeRole: expiration %q: %w", resp.Credentials.Expiration, err)
	}
	p.mu.Lock()
	p.cur = &credentials.Credentials{AccessKeyId: resp.Credentials.AccessKeyId, AccessKeySecret: resp.Credentials.AccessKeySecret,
		SecurityToken: resp.Credentials.SecurityToken, ProviderName: p.GetProviderName()}
	p.expires = exp
	p.mu.Unlock()
	return nil
}

// doSTS is do for a call that brings its own SDK client.
func (c *Client) doSTS(ctx context.Context, o op, req request, call func() (string, string, error)) error {
	if c.cfg.Sleep == nil {
		c.cfg.Sleep = sleep
	}
	for attempt := 1; ; attempt++ {
		req.SetReadTimeout(c.cfg.Timeout)
		req.SetScheme(c.cfg.Scheme)
		start := time.Now()
		reqID, result, err := call()
		rec := cloud.APICall{Provider: "alibaba", Action: o.action, Object: o.object, Result: result, RequestID: reqID,
			Attempt: attempt, Duration: time.Since(start)}
		if err == nil {
			cloud.LogCall(ctx, rec)
			return nil
		}
		ae := classify(o.action, o.object, err)
		rec.RequestID, rec.Code, rec.Message = ae.RequestID, ae.Code, ae.Message
		if !ae.retryable(o.idempotent) || attempt >= c.cfg.Retry.Attempts {
			cloud.LogCall(ctx, rec)
			return ae
		}
		rec.RetryIn = c.backoff(attempt)
		cloud.LogCall(ctx, rec)
		if err := c.cfg.Sleep(ctx, rec.RetryIn); err != nil {
			return errors.Join(err, ae)
		}
	}
}
