package vm

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// QMP runs one command on the instance's QMP socket and returns its
// "return" value. A connection per command: QMP serves one client at a time
// and nothing here holds one open. ctx bounds the whole exchange (go-qemu's
// monitor has no deadline of its own, so the connection is closed when ctx
// ends).
func (h *Host) QMP(ctx context.Context, name, command string, args any) (json.RawMessage, error) {
	in, err := h.Get(name)
	if err != nil {
		return nil, err
	}
	if in.State != StateRunning {
		return nil, fmt.Errorf("qmp %s on %s: instance is %s", command, name, in.State)
	}
	return qmpRun(ctx, in.QMPPath(), command, args)
}

func qmpRun(ctx context.Context, sock, command string, args any) (json.RawMessage, error) {
	mon, err := qmp.NewSocketMonitor("unix", sock, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	cmd, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return nil, err
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		if err := mon.Connect(); err != nil {
			done <- result{err: err}
			return
		}
		out, err := mon.Run(cmd)
		done <- result{out, err}
	}()
	var r result
	select {
	case r = <-done:
		mon.Disconnect()
	case <-ctx.Done():
		mon.Disconnect()
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
	if r.err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, r.err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(r.out, &resp); err != nil {
		return nil, fmt.Errorf("qmp %s: reply %q: %w", command, r.out, err)
	}
	return resp.Return, nil
}

// Status is QMP query-status: "running", "paused", "shutdown",
// "guest-panicked", …
func (h *Host) Status(ctx context.Context, name string) (string, error) {
	raw, err := h.QMP(ctx, name, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("query-status reply %s: %w", raw, err)
	}
	return st.Status, nil
}
