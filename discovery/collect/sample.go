package collect

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/discovery"
)

// counters is one reading of the kernel's cumulative counters.
type counters struct {
	at                time.Time
	cpuBusy, cpuTotal uint64
	diskBytes         uint64
	netBytes          uint64
	memPercent        float64
}

// Sampler turns successive readings of /proc/stat, /proc/meminfo,
// /proc/diskstats and /proc/net/dev into utilisation samples. The kernel
// keeps totals since boot, so a sample is the difference between two
// readings divided by the time between them.
type Sampler struct {
	Collector *Collector
	prev      *counters
}

// Sample takes a reading. The first call only primes the sampler and
// returns ok == false.
func (s *Sampler) Sample() (sample discovery.UtilisationSample, ok bool, err error) {
	c := s.Collector
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cur, err := c.counters(now())
	if err != nil {
		return sample, false, err
	}
	prev := s.prev
	s.prev = &cur
	if prev == nil {
		return sample, false, nil
	}
	secs := cur.at.Sub(prev.at).Seconds()
	if secs <= 0 {
		return sample, false, nil
	}
	sample.At = cur.at.UTC()
	if dt := cur.cpuTotal - prev.cpuTotal; cur.cpuTotal > prev.cpuTotal {
		sample.CPUPercent = 100 * float64(cur.cpuBusy-prev.cpuBusy) / float64(dt)
	}
	sample.MemoryPercent = cur.memPercent
	if cur.diskBytes >= prev.diskBytes {
		sample.DiskIOBytesPerSec = float64(cur.diskBytes-prev.diskBytes) / secs
	}
	if cur.netBytes >= prev.netBytes {
		sample.NetworkBytesPerSec = float64(cur.netBytes-prev.netBytes) / secs
	}
	return sample, true, nil
}

func (c *Collector) counters(at time.Time) (counters, error) {
	k := counters{at: at}
	stat, err := os.ReadFile(c.path("proc", "stat"))
	if err != nil {
		return k, fmt.Errorf("read cpu counters: %w", err)
	}
	for _, line := range strings.Split(string(stat), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal (guest is inside user)
		for i := 1; i < len(f) && i <= 8; i++ {
			n, _ := strconv.ParseUint(f[i], 10, 64)
			k.cpuTotal += n
			if i != 4 && i != 5 { // idle, iowait
				k.cpuBusy += n
			}
		}
		break
	}
	mem := c.meminfo()
	if total := mem["MemTotal"]; total > 0 {
		avail, ok := mem["MemAvailable"]
		if !ok {
			avail = mem["MemFree"] + mem["Buffers"] + mem["Cached"]
		}
		k.memPercent = 100 * float64(total-min(avail, total)) / float64(total)
	}
	for _, line := range strings.Split(c.read("proc", "diskstats"), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || virtualBlock(f[2]) || !exists(c.path("sys", "block", f[2])) {
			continue // partitions and virtual devices would count the same bytes twice
		}
		rd, _ := strconv.ParseUint(f[5], 10, 64)
		wr, _ := strconv.ParseUint(f[9], 10, 64)
		k.diskBytes += (rd + wr) * 512
	}
	for _, line := range strings.Split(c.read("proc", "net", "dev"), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		rx, _ := strconv.ParseUint(f[0], 10, 64)
		tx, _ := strconv.ParseUint(f[8], 10, 64)
		k.netBytes += rx + tx
	}
	return k, nil
}
