#!/usr/bin/env bash
# bench.sh: every benchmark Ferry records in docs/benchmarks.md, in one run.
# `make bench` calls it. Output goes to the terminal and to
# build/bench/<UTC timestamp>.md, so a run can be pasted into the docs.
#
#   scripts/bench.sh            # everything (≈ 15–25 min on 2 cores)
#   ONLY=api scripts/bench.sh   # one part: api (SQLite, PostgreSQL, replicas), go, queue, worker, limits, topology, planner, engine, discovery, launch, ui
#   QUICK=1 scripts/bench.sh    # smaller inputs, for a smoke run
#
# Each part is also runnable on its own; the command is printed before it runs.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/$(date -u +%Y%m%dT%H%M%SZ).md
ONLY=${ONLY:-}
QUICK=${QUICK:-}
failed=()

run() { # run NAME COMMAND...: runs a part, tees its output, remembers failures
  local name=$1; shift
  if [ -n "$ONLY" ] && [ "$ONLY" != "$name" ]; then return; fi
  { echo; echo "## $name"; echo; echo "\`$*\`"; echo; echo '```'; } | tee -a "$out"
  "$@" 2>&1 | tee -a "$out"
  local rc=${PIPESTATUS[0]}
  echo '```' | tee -a "$out"
  [ "$rc" = 0 ] || failed+=("$name")
}

{
  echo "# Ferry benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} | tee "$out"

if [ -n "$QUICK" ]; then
  api_env=(env BENCH_HOSTS=2000 BENCH_REQUESTS=500)
  gotime=1x
else
  api_env=(env)
  gotime=1s
fi

# Issues 2 and 15: first page of hosts (filter + nested fields) at 20,000
# hosts under 64 concurrent clients, next to a bare chi handler in the same
# run, on SQLite and on PostgreSQL (a throwaway cluster, internal/pgtest);
# then requests per second through a reverse proxy to one and two replicas.
run api "${api_env[@]}" go test ./internal/app -run '^$' -bench BenchmarkAPIHostsPage -benchtime 1x -count 3
run api "${api_env[@]}" FERRY_TEST_DATABASE=postgres go test ./internal/app -run '^$' -bench BenchmarkAPIHostsPage -benchtime 1x -count 3
run api "${api_env[@]}" go test ./internal/app -run '^$' -bench BenchmarkAPIReplicas -benchtime 1x -count 2

# Go micro/meso benchmarks of the pure packages.
run go go test -run '^$' -bench . -benchtime "$gotime" -benchmem ./planner/... ./discovery/... ./engine/...

# Issue 11: enqueue → handler start on a real redis-server (a 1,000-task
# burst, an idle queue) and the control-plane calls of one Alibaba migration.
run queue go test ./jobs -run '^$' -bench 'EnqueueToStart' -benchtime 3x
run queue go test ./jobs/migrationtest -count=1 -v -run TestAlibabaMigrationLifecycle

# Issue 11: how many concurrent migrations one `ferry worker` drives before
# throughput stops growing: N Alibaba migrations at once (emulator, real
# gateways, N agents), N = 1 … 64; migrations/min, MiB/s, control-plane work.
run worker env BENCH_WORKER_N="$([ -n "$QUICK" ] && echo 1,4 || echo 1,2,4,8,16,32,64)" go test ./jobs/migrationtest -count=1 -run '^$' -bench WorkerConcurrency -benchtime 1x -timeout 40m

# Issue 9: the worst documents the request cost limits let through (parse,
# validation, complexity) and what the limits add to a screen's query.
run limits go test ./graph -run '^$' -bench 'WorstPermitted|LimitsOverhead' -benchtime "$gotime" -benchmem

# Issue 14: Query.topology at 20,000 hosts / ~200,000 connections with a
# plan, through the real handler (application level and a drill-down).
run topology env BENCH_TOPOLOGY_HOSTS="$([ -n "$QUICK" ] && echo 2000 || echo 20000)" go test ./internal/app -run '^$' -bench BenchmarkTopology -benchtime 5x

# End-to-end scripts of each area (separate processes, real files).
for s in scripts/bench-*.sh; do
  name=$(basename "$s" .sh); name=${name#bench-}
  if [ -n "$QUICK" ]; then
    case $name in
      engine) run "$name" env QUICK=1 "$s" ;;
      planner) run "$name" "$s" 20000 ;;
      *) run "$name" "$s" ;;
    esac
  else
    run "$name" "$s"
  fi
done

# The inventory screen at 20,000 hosts, API and browser. `make bench` builds
# bin/ferry (with the UI) and installs chromium first.
if [ -z "$ONLY" ] || [ "$ONLY" = ui ]; then
  if [ ! -x bin/ferry ] || [ ! -d frontend/node_modules ]; then
    echo "ui: bin/ferry or frontend/node_modules missing: run 'make build' (make bench does)" | tee -a "$out"
    failed+=(ui)
  else
    run ui env FERRY_BIN="$PWD/bin/ferry" node frontend/e2e/bench-inventory.mjs "$([ -n "$QUICK" ] && echo 2000 || echo 20000)"
    run ui env FERRY_BIN="$PWD/bin/ferry" node frontend/e2e/bench-topology.mjs "$([ -n "$QUICK" ] && echo 2000 || echo 20000)"
  fi
fi

echo
echo "results: $out"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
