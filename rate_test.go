package ferry_test

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
)

// rateVectors are the formatting cases shared with the frontend's
// formatRate (frontend/src/rate.spec.ts reads the same file).
func rateVectors(t testing.TB) []struct {
	Bytes *float64 `json:"bytes_per_second"`
	Text  string   `json:"text"`
} {
	b, err := os.ReadFile("testdata/rates.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Format []struct {
			Bytes *float64 `json:"bytes_per_second"`
			Text  string   `json:"text"`
		} `json:"format"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Format
}

func TestRateString(t *testing.T) {
	for _, v := range rateVectors(t) {
		r := ferry.Unlimited
		if v.Bytes != nil {
			r = ferry.Rate(*v.Bytes)
		}
		if got := r.String(); got != v.Text {
			t.Errorf("Rate(%v).String() = %q, want %q", float64(r), got, v.Text)
		}
		back, err := ferry.ParseRate(v.Text)
		if err != nil || back != r {
			t.Errorf("ParseRate(%q) = %v, %v; want %v exactly", v.Text, float64(back), err, float64(r))
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want ferry.Rate
	}{
		{"8Mbps", 1e6}, {"8 Mbps", 1e6}, {"8mbps", 1e6}, {"8Mbit/s", 1e6}, {"8mbit", 1e6}, {"1Gbps", 125e6}, {"1gbit/s", 125e6},
		{"2Tbps", 250e9}, {"800kbps", 100e3}, {"800Kbps", 100e3}, {"64bps", 8}, {"8bit/s", 1},
		{"20MiB/s", 20 << 20}, {"20mib/s", 20 << 20}, {" 64 KiB/s ", 64 << 10}, {"1GiB/s", 1 << 30}, {"1TiB/s", 1 << 40},
		{"500kB/s", 500e3}, {"500KB/s", 500e3}, {"1.5MB/s", 1.5e6}, {"2GB/s", 2e9}, {"1TB/s", 1e12}, {"100B/s", 100},
		{".5MB/s", 0.5e6}, {"1e3kbps", 125e3}, {"0", 0}, {"0.0", 0}, {"0Mbps", 0},
		{"unlimited", ferry.Unlimited}, {"Unlimited", ferry.Unlimited}, {"max", ferry.Unlimited}, {"inf", ferry.Unlimited},
	}
	for _, tc := range tests {
		got, err := ferry.ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tc.in, float64(got), err, float64(tc.want))
		}
	}
}

func TestParseRateErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "rate is empty"},
		{"fast", `rate "fast": want a number and a unit`},
		{"-1Mbps", `rate "-1Mbps": want a number`},
		{"NaN", `rate "NaN"`},
		{"8 furlongs", `unknown unit "furlongs"`},
		{"0x10Mbps", `unknown unit "x10Mbps"`},
		// What the engine and the planner used to read differently.
		{"1000", "needs a unit (Ferry's engine read a bare number as bytes, its planner as bits): write 1000bps for bits or 1000B/s for bytes"},
		{"10Mb/s", "ambiguous (Ferry's engine read it as bytes, its planner as bits): write 10Mbps for megabits or 10MB/s for megabytes"},
		{"10mb/s", "ambiguous"},
		{"10MBps", `"MBps" reads as bytes by its letters, but Ferry used to read it as bits`},
		{"20Mibps", `write 20MiB/s for bytes`},
		{"100M", `"M" is not per second: write 100Mbps for megabits or 100MB/s`},
		{"100MB", `"MB" is not per second`},
		{"1e300B/s", "beyond 8000Tbps: write unlimited"},
		{"1e-3bps", "below 1 bit/s: write 0 to pause"},
		{"5 µB/s", "unknown unit"},
	}
	for _, tc := range tests {
		_, err := ferry.ParseRate(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRate(%q) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// TestParseStoredRate: rates stored before the vocabulary was one read as
// the store that wrote them meant them; anything else as ParseRate.
func TestParseStoredRate(t *testing.T) {
	tests := []struct {
		in   string
		as   ferry.LegacyRates
		want ferry.Rate
	}{
		// Migrations' rate limits: engine/throttle's reading.
		{"1000", ferry.EngineRates, 1000},
		{"10mb/s", ferry.EngineRates, 10e6},
		{"10Mb/s", ferry.EngineRates, 10e6},
		{"10MBps", ferry.EngineRates, 1.25e6},
		{"20mibps", ferry.EngineRates, 20 << 20},
		{"8Mbps", ferry.EngineRates, 1e6},
		{"1.5TiB/s", ferry.EngineRates, 1.5 * (1 << 40)}, // the engine had no TiB/s: ParseRate's
		// Plans' stored constraints: the planner's reading, all bits.
		{"100000000", ferry.PlannerRates, 12.5e6},
		{"100MB/s", ferry.PlannerRates, 12.5e6},
		{"100M", ferry.PlannerRates, 12.5e6},
		{"1 Gbit/s", ferry.PlannerRates, 125e6},
		{"1e9", ferry.PlannerRates, 125e6},
		{"20MiB/s", ferry.PlannerRates, 20 << 20}, // the planner refused it: ParseRate's
	}
	for _, tc := range tests {
		got, err := ferry.ParseStoredRate(tc.in, tc.as)
		if err != nil || got != tc.want {
			t.Errorf("ParseStoredRate(%q, %d) = %v, %v; want %v", tc.in, tc.as, float64(got), err, float64(tc.want))
		}
	}
	if _, err := ferry.ParseStoredRate("fast", ferry.EngineRates); err == nil {
		t.Error("a stored rate no reader reads parsed")
	}
}

// TestCanonicalRatesReadTheSameEverywhere: what Ferry stores now (String)
// reads the same through ParseRate and through both legacy readers, so a
// stored rate needs no note of when it was written.
func TestCanonicalRatesReadTheSameEverywhere(t *testing.T) {
	var rates []ferry.Rate
	for _, v := range rateVectors(t) {
		if v.Bytes != nil {
			rates = append(rates, ferry.Rate(*v.Bytes))
		}
	}
	for e := -1.0; e <= 15; e += 0.37 {
		rates = append(rates, ferry.Rate(math.Round(math.Pow(10, e)*8)/8))
	}
	rates = append(rates, ferry.Unlimited)
	for _, r := range rates {
		s := r.String()
		want, err := ferry.ParseRate(s)
		if err != nil || want != r {
			t.Fatalf("ParseRate(%q) = %v, %v; want %v", s, float64(want), err, float64(r))
		}
		for _, as := range []ferry.LegacyRates{ferry.EngineRates, ferry.PlannerRates} {
			if got, err := ferry.ParseStoredRate(s, as); err != nil || got != r {
				t.Errorf("ParseStoredRate(%q, %d) = %v, %v; want %v", s, as, float64(got), err, float64(r))
			}
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"8Mbps", "20MiB/s", "500kB/s", "0", "unlimited", "1.5 GiB/s", "1000", "10mb/s", "1e3kbps", "12.5Mbps", ".5MB/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, as := range []ferry.LegacyRates{ferry.EngineRates, ferry.PlannerRates} {
			ferry.ParseStoredRate(s, as) // must not panic
		}
		r, err := ferry.ParseRate(s)
		if err != nil {
			return
		}
		if r < 0 || math.IsNaN(float64(r)) || r > ferry.MaxRate && !r.IsUnlimited() || r > 0 && r.Bits() < 1 {
			t.Fatalf("ParseRate(%q) = %v: out of range", s, float64(r))
		}
		// What parses prints to a form that parses to exactly the same
		// rate, and every reader of stored rates agrees on it.
		back, err := ferry.ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %v; its String %q reads back as %v, %v", s, float64(r), r.String(), float64(back), err)
		}
		for _, as := range []ferry.LegacyRates{ferry.EngineRates, ferry.PlannerRates} {
			if got, err := ferry.ParseStoredRate(r.String(), as); err != nil || got != r {
				t.Fatalf("stored reader %d reads %q as %v, %v; want %v", as, r.String(), float64(got), err, float64(r))
			}
		}
	})
}
