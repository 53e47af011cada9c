package ferry

// Rates: how fast a transfer may go. One spelling is read the same way by
// the planner (plan.yaml, generatePlan), the engine (agent --rate, transfer
// windows, the token bucket), the API (startMigration's rateLimit) and the
// UI, so "10MB/s" cannot mean megabytes in one place and megabits in another.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Rate is a transfer rate in bytes per second. Unlimited means no cap; 0
// means paused.
type Rate float64

// Unlimited is the Rate of an uncapped transfer.
var Unlimited = Rate(math.Inf(1))

// MaxRate is the highest finite rate ParseRate accepts (8 Pbit/s): above it
// a number is a typo, and "unlimited" says what is meant.
const MaxRate Rate = 1e15

// IsUnlimited reports whether r caps nothing.
func (r Rate) IsUnlimited() bool { return math.IsInf(float64(r), 1) }

// Bits returns r in bits per second.
func (r Rate) Bits() float64 { return float64(r) * 8 }

// RateFromBits returns the Rate of bits bits per second.
func RateFromBits(bits float64) Rate { return Rate(bits / 8) }

// rateUnit is one unit a rate may be written in, as bytes per second.
type rateUnit struct {
	name string
	mult float64 // bytes per second of one unit
}

// canonicalUnits are the units String writes, largest first. They are
// chosen so that every reader Ferry ever had (ParseRate and the two legacy
// readers below) reads them the same: bits as "bps", bytes only in binary
// units, never "B/s" (which the old planner read as bits).
var canonicalUnits = []rateUnit{
	{"TiB/s", 1 << 40}, {"Tbps", 1e12 / 8}, {"GiB/s", 1 << 30}, {"Gbps", 1e9 / 8},
	{"MiB/s", 1 << 20}, {"Mbps", 1e6 / 8}, {"KiB/s", 1 << 10}, {"kbps", 1e3 / 8}, {"bps", 1.0 / 8},
}

// String writes r the way ParseRate reads it back exactly: "unlimited",
// "0", or a number and the unit that needs the fewest digits ("8Mbps",
// "20MiB/s", "1.5GiB/s", "12.5Mbps"), bits on a tie.
func (r Rate) String() string {
	switch {
	case r.IsUnlimited():
		return "unlimited"
	case r == 0:
		return "0"
	case math.IsNaN(float64(r)) || r < 0:
		return strconv.FormatFloat(float64(r), 'g', -1, 64) + "B/s" // not a rate ParseRate makes
	}
	best, bestDigits := "", 0
	for _, u := range canonicalUnits {
		v := float64(r) / u.mult
		if v < 1 {
			continue
		}
		s := strconv.FormatFloat(v, 'f', -1, 64)
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back*u.mult != float64(r) {
			continue // not exact in this unit
		}
		if d := significantDigits(s); best == "" || d < bestDigits {
			best, bestDigits = s+u.name, d
		}
	}
	if best == "" {
		// Below 1 bps: ParseRate refuses these; write them exactly anyway.
		return strconv.FormatFloat(r.Bits(), 'f', -1, 64) + "bps"
	}
	return best
}

// significantDigits counts the digits of a decimal without leading zeros,
// and without trailing zeros of its integer part ("12500" has 3, "12.5" 3).
func significantDigits(s string) int {
	s = strings.TrimLeft(strings.Replace(s, ".", "", 1), "0")
	if !strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
	}
	return len(s)
}

// rateHelp ends every rate error: what a good rate looks like.
const rateHelp = "want a number and a unit such as 100Mbps or 1Gbps (bits per second), 20MiB/s or 500kB/s (bytes per second), 0 (paused) or unlimited"

// ParseRate reads a rate a person typed. Units, the prefix letter in any case:
//
//	bits per second:  bps kbps Mbps Gbps Tbps, bit/s kbit/s Mbit/s Gbit/s Tbit/s
//	bytes per second: B/s kB/s MB/s GB/s TB/s (decimal), KiB/s MiB/s GiB/s TiB/s (binary)
//
// plus "0" (paused) and "unlimited" (also "max", "inf"). A space may separate
// the number from its unit. Spellings that Ferry's engine and planner used to
// read differently are refused with both readings named, so that nothing
// silently changes by a factor of eight: a number without a unit (bytes to
// the engine, bits to the planner), "Mb/s" with a small b (bytes to the
// engine, bits to the planner) and "MBps" (bits to both, bytes by its
// letters). Rates below 1 bit/s and above MaxRate are refused.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "":
		return 0, fmt.Errorf("rate is empty: %s", rateHelp)
	case "unlimited", "max", "inf":
		return Unlimited, nil
	}
	num, unit := splitNumber(t)
	v, err := strconv.ParseFloat(num, 64)
	if num == "" || err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate %q: %s", s, rateHelp)
	}
	mult, err := unitOf(num, unit)
	if err != nil {
		if v == 0 && unit == "" {
			return 0, nil
		}
		return 0, fmt.Errorf("rate %q: %w", s, err)
	}
	r := Rate(v * mult)
	switch {
	case r == 0:
		return 0, nil
	case r.Bits() < 1:
		return 0, fmt.Errorf("rate %q is below 1 bit/s: write 0 to pause", s)
	case r > MaxRate:
		return 0, fmt.Errorf("rate %q is beyond %s: write unlimited for no cap", s, MaxRate)
	}
	return r, nil
}

// splitNumber cuts s into a plain decimal number (digits, one point, an
// optional exponent; no sign, no hex) and the rest, trimmed.
func splitNumber(s string) (num, rest string) {
	i := 0
	digits := func() {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	digits()
	if i < len(s) && s[i] == '.' {
		i++
		digits()
	}
	if i > 0 && i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			i = j
			digits()
		}
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// prefixes are the decimal multipliers a unit may start with.
var prefixes = map[string]float64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}

// binaryPrefixes are the binary ones ("Ki", "Mi", ...).
var binaryPrefixes = map[string]float64{"ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}

// unitOf returns the bytes per second of one unit, or why the unit is
// refused. num is the number as written, for the suggestions.
func unitOf(num, unit string) (float64, error) {
	for i := 0; i < len(unit); i++ {
		if unit[i] >= 0x80 {
			return 0, fmt.Errorf("unknown unit %q: %s", unit, rateHelp)
		}
	}
	lower := strings.ToLower(unit)
	ambiguous := func(engine, planner string) error {
		return fmt.Errorf("ambiguous (Ferry's engine read it as %s, its planner as %s): write %sMbps for megabits or %sMB/s for megabytes per second", engine, planner, num, num)
	}
	if unit == "" {
		return 0, fmt.Errorf("a number needs a unit (Ferry's engine read a bare number as bytes, its planner as bits): write %sbps for bits or %sB/s for bytes per second", num, num)
	}
	// Binary bytes: "MiB/s" in any case.
	if p, ok := strings.CutSuffix(lower, "ib/s"); ok {
		if m, ok := binaryPrefixes[p+"i"]; ok {
			return m, nil
		}
	}
	if p, ok := strings.CutSuffix(lower, "ibps"); ok && binaryPrefixes[p+"i"] > 0 {
		return 0, fmt.Errorf("%q is mebibits by its letters but the engine read it as bytes: write %s%sB/s for bytes", unit, num, unit[:len(p)+1])
	}
	// Bits: "Mbit/s", "Mbit", or "Mbps" with a small b.
	for _, suf := range []string{"bit/s", "bit"} {
		if p, ok := strings.CutSuffix(lower, suf); ok {
			if m, ok := prefixes[p]; ok {
				return m / 8, nil
			}
		}
	}
	if p, ok := strings.CutSuffix(lower, "bps"); ok {
		if m, ok := prefixes[p]; ok {
			if unit[len(p)] == 'B' {
				return 0, fmt.Errorf("%q reads as bytes by its letters, but Ferry used to read it as bits: write %sMbps for megabits or %sMB/s for megabytes per second", unit, num, num)
			}
			return m / 8, nil
		}
	}
	// Decimal bytes: "MB/s" with a capital B; "Mb/s" is ambiguous.
	if p, ok := strings.CutSuffix(lower, "b/s"); ok {
		if m, ok := prefixes[p]; ok {
			if unit[len(p)] == 'b' {
				return 0, ambiguous("bytes", "bits")
			}
			return m, nil
		}
	}
	if _, ok := prefixes[strings.TrimSuffix(lower, "b")]; ok {
		return 0, fmt.Errorf("%q is not per second: write %sMbps for megabits or %sMB/s for megabytes per second", unit, num, num)
	}
	return 0, fmt.Errorf("unknown unit %q: %s", unit, rateHelp)
}

// LegacyRates names a store of rates written before Ferry had one rate
// vocabulary, so that ParseStoredRate reads a stored rate as it was meant.
type LegacyRates int

const (
	// EngineRates: migrations' stored rate limits (startMigration's
	// rateLimit, sent to agents as they were typed), read the way
	// engine/throttle read them: case-insensitive, a bare number and "mb/s"
	// bytes, "mbps" bits, "mibps" binary bytes.
	EngineRates LegacyRates = iota + 1
	// PlannerRates: plans' stored constraints (bandwidth, transfer window
	// rates), read the way the planner read them: everything bits, a bare
	// number too, "/s" and "ps" ignored ("100MB/s" was 100 Mbit/s).
	PlannerRates
)

// ParseStoredRate reads a rate stored by an earlier Ferry the way the store
// as wrote it, and otherwise as ParseRate does. Ferry now stores rates as
// Rate.String writes them, which the legacy readers read exactly as
// ParseRate does, so a value may be read this way however old it is. Never
// use it for what a person types now: that is ParseRate's.
func ParseStoredRate(s string, as LegacyRates) (Rate, error) {
	var r Rate
	var ok bool
	switch as {
	case EngineRates:
		r, ok = legacyEngineRate(s)
	case PlannerRates:
		r, ok = legacyPlannerRate(s)
	}
	if ok {
		return r, nil
	}
	return ParseRate(s)
}

// legacyEngineUnits is engine/throttle's unit table before the vocabulary
// was unified, frozen: do not edit.
var legacyEngineUnits = []rateUnit{
	{"gibps", 1 << 30}, {"mibps", 1 << 20}, {"kibps", 1 << 10},
	{"gib/s", 1 << 30}, {"mib/s", 1 << 20}, {"kib/s", 1 << 10},
	{"gb/s", 1e9}, {"mb/s", 1e6}, {"kb/s", 1e3}, {"b/s", 1},
	{"gbit/s", 1e9 / 8}, {"mbit/s", 1e6 / 8}, {"kbit/s", 1e3 / 8}, {"bit/s", 1.0 / 8},
	{"gbps", 1e9 / 8}, {"mbps", 1e6 / 8}, {"kbps", 1e3 / 8}, {"bps", 1.0 / 8},
}

// legacyEngineRate is the former engine/throttle.ParseRate, frozen.
func legacyEngineRate(s string) (Rate, bool) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "":
		return 0, false
	case "unlimited", "max", "inf":
		return Unlimited, true
	}
	mult, num := 1.0, t
	for _, u := range legacyEngineUnits {
		if strings.HasSuffix(t, u.name) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(t, u.name))
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v*mult > 1e15 {
		return 0, false
	}
	return Rate(v * mult), true
}

// legacyPlannerUnits is the planner's bit-rate unit table before the
// vocabulary was unified, frozen: do not edit.
var legacyPlannerUnits = map[string]float64{
	"": 1, "b": 1, "bit": 1, "k": 1e3, "kb": 1e3, "kbit": 1e3, "m": 1e6, "mb": 1e6, "mbit": 1e6,
	"g": 1e9, "gb": 1e9, "gbit": 1e9, "t": 1e12, "tb": 1e12, "tbit": 1e12,
}

// legacyPlannerRate is the former planner.BitRate.UnmarshalYAML, frozen
// (negative rates, which its validation refused, are refused here).
func legacyPlannerRate(s string) (Rate, bool) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(s), "/s"), "ps")
	t = strings.TrimSpace(t)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || t[i] == '-' || t[i] == '+' || t[i] == 'e' && i > 0 && i+1 < len(t) && (t[i+1] >= '0' && t[i+1] <= '9' || t[i+1] == '-')) {
		i++
	}
	v, err := strconv.ParseFloat(t[:i], 64)
	m, ok := legacyPlannerUnits[strings.TrimSpace(t[i:])]
	if err != nil || !ok {
		return 0, false
	}
	v *= m
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > math.MaxInt64/2 {
		return 0, false
	}
	return RateFromBits(v), true
}
