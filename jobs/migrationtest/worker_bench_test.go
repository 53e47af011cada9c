package migrationtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
	"github.com/ferry-migrate/ferry/ent/migration"
	"github.com/ferry-migrate/ferry/ent/step"
	"github.com/ferry-migrate/ferry/ent/stepevent"
	"github.com/ferry-migrate/ferry/internal/database"
	"github.com/ferry-migrate/ferry/internal/pgtest"
	"github.com/ferry-migrate/ferry/internal/redistest"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// cpuTicks is the user+system CPU a process has used, in clock ticks
// (1/100 s on Linux).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// ticksOf sums cpuTicks over the processes whose command line holds every
// one of parts (NUL-separated arguments joined by spaces).
func ticksOf(parts ...string) int64 {
	ents, _ := os.ReadDir("/proc")
	var n int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cl, all := strings.ReplaceAll(string(b), "\x00", " "), true
		for _, p := range parts {
			all = all && strings.Contains(cl, p)
		}
		if all {
			n += cpuTicks(pid)
		}
	}
	return n
}

// machineBusy is the machine's busy and total CPU ticks (every core).
func machineBusy() (busy, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	for i, v := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// BenchmarkWorkerConcurrency is how many concurrent migrations one `ferry
// worker` drives before throughput stops growing (issue 11): serve
// --workers 0, one worker at --concurrency 128 on a real redis-server, the
// ECS emulator (its gateways real `ferry gateway` processes), and N
// Alibaba migrations started at once, N = 1, 2, 4, …, 64 (BENCH_WORKER_N,
// e.g. "1,2,4"), each round on hosts of its own (a syncing migration cannot
// be ended but by a launch and a rollback; 127 agents, sampling every 2 s:
// an agent handles the commands its long-poll received after its sampling
// sleep, so a longer interval delays every sync command by up to that). One round is startMigration → every initial
// sync done with its snapshot. Reported: migrations per minute, disk MiB/s
// (the disks' sizes) and data MiB/s (their allocated blocks, what the
// agents send), step events and ECS calls per second (control-plane work),
// and the CPU (in % of one core) of the worker, of serve, of the emulator
// (this process), of the gateways and of the agents, and how busy the whole
// machine was (other work on it included). BENCH_DATABASE=postgres runs it
// on PostgreSQL instead of the data directory's SQLite file.
//
//	go test ./jobs/migrationtest -run '^$' -bench WorkerConcurrency -benchtime 1x -timeout 30m
func BenchmarkWorkerConcurrency(b *testing.B) {
	ns := []int{1, 2, 4, 8, 16, 32, 64}
	if v := os.Getenv("BENCH_WORKER_N"); v != "" {
		ns = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				b.Fatalf("BENCH_WORKER_N=%q: want numbers like 1,2,4", v)
			}
			ns = append(ns, n)
		}
	}
	sumN := 0
	for _, n := range ns {
		sumN += n
	}
	redis := redistest.Start(b)
	env := []string{"FERRY_REDIS_URL=" + redis}
	dbURL := ""
	if os.Getenv("BENCH_DATABASE") == "postgres" {
		// The same on PostgreSQL (a throwaway cluster, no fsync): serve and
		// the worker then do not share one SQLite file's write lock.
		pg, err := pgtest.StartCluster()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pg.Stop)
		if dbURL, err = pg.CreateDatabase(context.Background(), "bench"); err != nil {
			b.Fatal(err)
		}
		env = append(env, "FERRY_DATABASE_URL="+dbURL)
	}
	// 12–20 MiB disks with 1.3–3.5 MiB of data each.
	w := newWorldWith(b, []string{"--workers", "0"}, env, 16<<20, [2]int64{1<<20 + 256<<10, 1536 << 10}, [2]int64{8 << 20, 1 << 20})
	f := w.addAgents(b, sumN-1, 4)
	worker := start(b, w.bin, env, "worker", "--data-dir", w.data, "--concurrency", "128", "--public-url", w.base)
	// Every round's gateways stay (their migrations keep syncing): an
	// account quota above the default 50 living instances.
	ecs := startECSOpts(b, w, ecsemu.Options{Dir: b.TempDir(), VM: ecsemu.VMOptions{NoBoot: true}, Quota: ecsemu.Quota{Instances: 4 * sumN, Disks: 16 * sumN, Snapshots: 16 * sumN}})
	acct := ecs.account(b, w.admin)
	// The agents' command lines hold their state directories, under the
	// benchmark's temporary root.
	root := filepath.Dir(filepath.Dir(w.data))
	hosts := make([]string, 0, len(f.imgs))
	for id := range f.imgs {
		hosts = append(hosts, id)
	}
	if dbURL == "" {
		dbURL = filepath.Join(w.data, "ferry.db")
	}
	db, err := database.Open(context.Background(), dbURL, false)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sys := viewer.SystemContext(context.Background())
	b.Logf("%d cores, load %s", runtime.NumCPU(), loadavg())

	for _, n := range ns {
		b.Run(fmt.Sprintf("alibaba/N=%d", n), func(b *testing.B) {
			var elapsed time.Duration
			var bytes, data, events, calls int64
			var workerCPU, serveCPU, selfCPU, gwCPU, agentCPU, busy, total int64
			for range b.N {
				calls0 := totalCalls(ecs)
				w0, s0, e0 := cpuTicks(worker.cmd.Process.Pid), cpuTicks(w.serve.cmd.Process.Pid), cpuTicks(os.Getpid())
				g0, a0 := ticksOf("ferry gateway", w.addr), ticksOf(" agent run ", root)
				b0, t0 := machineBusy()
				started := time.Now()
				if len(hosts) < n {
					b.Fatalf("%d hosts left for a round of %d (run with -benchtime 1x)", len(hosts), n)
				}
				d := w.admin.mustGQL(`mutation($h: [ID!]!, $a: ID) { startMigration(hostIds: $h, cloudAccountId: $a) { id } }`,
					map[string]any{"h": hosts[:n], "a": acct})
				for _, h := range hosts[:n] {
					data += allocated(b, f.imgs[h])
				}
				hosts = hosts[n:]
				var ids []int
				for _, m := range dig(d, "startMigration").([]any) {
					id, _ := strconv.Atoi(dig(m, "id").(string))
					ids = append(ids, id)
				}
				waitFor(b, fmt.Sprintf("%d initial syncs to Alibaba", n), 15*time.Minute, func() bool {
					done := 0
					for _, m := range db.Client.Migration.Query().Where(migration.IDIn(ids...)).WithRecoveryPoints().AllX(sys) {
						if m.State == "failed" {
							b.Fatalf("migration %d failed: %s", m.ID, m.FailureReason)
						}
						if m.State == "syncing" && m.BytesTotal > 0 && m.BytesDone == m.BytesTotal && len(m.Edges.RecoveryPoints) > 0 {
							done++
						}
					}
					return done == n
				})
				elapsed += time.Since(started)
				workerCPU += cpuTicks(worker.cmd.Process.Pid) - w0
				serveCPU += cpuTicks(w.serve.cmd.Process.Pid) - s0
				selfCPU += cpuTicks(os.Getpid()) - e0
				gwCPU += ticksOf("ferry gateway", w.addr) - g0
				agentCPU += ticksOf(" agent run ", root) - a0
				b1, t1 := machineBusy()
				busy, total = busy+b1-b0, total+t1-t0
				calls += totalCalls(ecs) - calls0
				for _, m := range db.Client.Migration.Query().Where(migration.IDIn(ids...)).AllX(sys) {
					for _, dk := range m.Disks {
						bytes += dk.BytesDone
					}
				}
				events += int64(db.Client.StepEvent.Query().Where(stepevent.HasStepWith(step.MigrationIDIn(ids...))).CountX(sys))

			}
			sec := elapsed.Seconds()
			b.ReportMetric(float64(n*b.N)/sec*60, "migrations/min")
			b.ReportMetric(float64(bytes)/sec/(1<<20), "disk-MiB/s")
			b.ReportMetric(float64(data)/sec/(1<<20), "data-MiB/s")
			b.ReportMetric(float64(events)/sec, "step-events/s")
			b.ReportMetric(float64(calls)/sec, "ecs-calls/s")
			b.ReportMetric(float64(workerCPU)/sec, "worker-cpu-%")
			b.ReportMetric(float64(serveCPU)/sec, "serve-cpu-%")
			b.ReportMetric(float64(selfCPU)/sec, "emulator-cpu-%")
			b.ReportMetric(float64(gwCPU)/sec, "gateways-cpu-%")
			b.ReportMetric(float64(agentCPU)/sec, "agents-cpu-%")
			b.ReportMetric(float64(busy)/float64(max(total, 1))*100, "machine-busy-%")
			b.ReportMetric(sec/float64(b.N), "s/round")
		})
	}
}

func totalCalls(e *emulatedECS) int64 {
	var n int64
	for _, c := range e.srv.Calls() {
		n += int64(c)
	}
	return n
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
