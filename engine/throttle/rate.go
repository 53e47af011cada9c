// Package throttle owns how fast replication may send: a token bucket in
// bytes per second (golang.org/x/time/rate) and, on top of it, the transfer
// windows of a ferry.Schedule, each with its own rate (0 = paused). Both
// can be changed while a sync runs, and the clock is injected so that
// windows can be tested without waiting for Monday. Rates and windows are
// the shared vocabulary's (ferry.Rate, ferry.Schedule): the same spellings
// and the same rule on overlaps as the planner and the API.
package throttle

import "github.com/ferry-migrate/ferry"

// Rate is a transfer rate in bytes per second (ferry.Rate).
type Rate = ferry.Rate

// Unlimited is the Rate of an uncapped transfer.
var Unlimited = ferry.Unlimited

// ParseRate reads a rate a person typed (ferry.ParseRate): "8Mbps",
// "20MiB/s", "500kB/s", "0" (paused) or "unlimited".
func ParseRate(s string) (Rate, error) { return ferry.ParseRate(s) }
