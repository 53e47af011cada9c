package cloud

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// APICall is one request a provider made to its cloud's API, as the
// migration's log shows it: what was asked, about what, the cloud's request
// id (what the cloud's support desk asks for), how it ended and whether it
// will be tried again.
type APICall struct {
	Provider  string        // "alibaba"
	Action    string        // the cloud's operation, "CreateSnapshot"
	Object    string        // what it was about: a disk, an instance
	Result    string        // what it made or found, when it says ("s-bp1…")
	RequestID string        // the cloud's id of the request
	Attempt   int           // 1 for the first try
	Duration  time.Duration // the request's round trip
	// Code is the cloud's error code ("Throttling.User"), or empty when the
	// call succeeded; Message its text.
	Code, Message string
	// RetryIn is set when the call will be repeated after that long.
	RetryIn time.Duration
}

// String is the log line: "alibaba CreateSnapshot d-1 → s-2 (request R, 120ms)".
func (c APICall) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", c.Provider, c.Action)
	if c.Object != "" {
		fmt.Fprintf(&b, " %s", c.Object)
	}
	if c.Result != "" {
		fmt.Fprintf(&b, " → %s", c.Result)
	}
	if c.Code != "" {
		fmt.Fprintf(&b, ": %s", c.Code)
		if c.Message != "" {
			fmt.Fprintf(&b, " (%s)", c.Message)
		}
	}
	fmt.Fprintf(&b, " [request %s, attempt %d, %s]", orNone(c.RequestID), c.Attempt, c.Duration.Round(time.Millisecond))
	if c.RetryIn > 0 {
		fmt.Fprintf(&b, ", retrying in %s", c.RetryIn.Round(time.Millisecond))
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

type callLogKey struct{}

// WithCallLog returns a context whose provider calls are reported to log
// (the migration step sets it to write into the migration's log). Loggers
// nest: the innermost is called.
func WithCallLog(ctx context.Context, log func(APICall)) context.Context {
	return context.WithValue(ctx, callLogKey{}, log)
}

// LogCall reports c to the context's logger, if any. Providers call it for
// every request they make, including retries.
func LogCall(ctx context.Context, c APICall) {
	if log, ok := ctx.Value(callLogKey{}).(func(APICall)); ok && log != nil {
		log(c)
	}
}
