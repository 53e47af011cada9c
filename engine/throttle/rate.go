// Package throttle owns how fast replication may send: a token bucket in
// bytes per second, and a weekly schedule of transfer windows, each with its
// own rate (0 = paused). Both can be changed while a sync runs, and the clock
// is injected so that windows can be tested without waiting for Monday.
package throttle

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Rate is a transfer rate in bytes per second. Unlimited means no cap.
type Rate float64

// Unlimited is the Rate of an uncapped transfer.
var Unlimited = Rate(math.Inf(1))

// IsUnlimited reports whether r does not cap anything.
func (r Rate) IsUnlimited() bool { return math.IsInf(float64(r), 1) }

// String formats r the way ParseRate reads it back.
func (r Rate) String() string {
	switch {
	case r.IsUnlimited():
		return "unlimited"
	case r == 0:
		return "0"
	}
	return strconv.FormatFloat(float64(r), 'f', -1, 64) + "B/s"
}

// units maps a suffix (lower case) to bytes per second. Network people write
// bits (8Mbps), storage people write bytes (1MiB/s); both are accepted.
var units = []struct {
	suffix string
	mult   float64
}{
	{"gibps", 1 << 30}, {"mibps", 1 << 20}, {"kibps", 1 << 10}, // explicit bytes/s spelled per second
	{"gib/s", 1 << 30}, {"mib/s", 1 << 20}, {"kib/s", 1 << 10},
	{"gb/s", 1e9}, {"mb/s", 1e6}, {"kb/s", 1e3}, {"b/s", 1},
	{"gbit/s", 1e9 / 8}, {"mbit/s", 1e6 / 8}, {"kbit/s", 1e3 / 8}, {"bit/s", 1.0 / 8},
	{"gbps", 1e9 / 8}, {"mbps", 1e6 / 8}, {"kbps", 1e3 / 8}, {"bps", 1.0 / 8},
}

// ParseRate reads a rate such as "8Mbps" (megabits/s), "20MiB/s", "500kB/s",
// "0" (paused) or "unlimited". Units: bps, Kbps, Mbps, Gbps (bits, decimal),
// B/s, kB/s, MB/s, GB/s (bytes, decimal), KiB/s, MiB/s, GiB/s (bytes, binary).
// A bare number is bytes per second.
func ParseRate(s string) (Rate, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "":
		return 0, fmt.Errorf("rate is empty: want e.g. 8Mbps, 20MiB/s, 0 or unlimited")
	case "unlimited", "max", "inf":
		return Unlimited, nil
	}
	mult := 1.0
	num := t
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("rate %q: want a non-negative number with a unit such as 8Mbps, 20MiB/s, 500kB/s, or 0 or unlimited", s)
	}
	r := v * mult
	if r > 1e15 {
		return 0, fmt.Errorf("rate %q is beyond 1 PB/s; use unlimited", s)
	}
	return Rate(r), nil
}
