//go:build !agent

package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestECSEmuCommand: `ferry ecsemu` serves the API the SDK calls with the
// credentials it prints, and stops with its context.
func TestECSEmuCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := newECSEmuCmd()
	var out syncBuffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--listen", addr, "--data", t.TempDir(), "--access-key-id", "LTAI-try", "--access-key-secret", "try-secret", "--quiet"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	c, err := ecs.NewClientWithAccessKey("cn-hangzhou", "LTAI-try", "try-secret")
	if err != nil {
		t.Fatal(err)
	}
	c.Domain = addr
	deadline := time.Now().Add(10 * time.Second)
	var resp *ecs.DescribeRegionsResponse
	for {
		if resp, err = c.DescribeRegions(ecs.CreateDescribeRegionsRequest()); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the command is starting; bounded by the deadline
	}
	if err != nil || len(resp.Regions.Region) == 0 {
		t.Fatalf("DescribeRegions against ferry ecsemu: %+v, %v", resp, err)
	}
	if s := out.String(); !strings.Contains(s, "http://"+addr) || !strings.Contains(s, "LTAI-try") || !strings.Contains(s, "vswitch_id=vsw-") {
		t.Errorf("the command printed %q: want its endpoint and key", s)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ferry ecsemu ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ferry ecsemu did not stop with its context")
	}
}
