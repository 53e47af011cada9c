#!/usr/bin/env bash
# bench-planner-server.sh: plan generation on the server, end to end through
# the plan:generate job handler: load the estate from a real SQLite file,
# plan, write waves and members in one transaction. Peak RSS is the job's
# (reset before it runs). Prints a markdown table.
# Usage: scripts/bench-planner-server.sh [hosts...]   (default: 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ $# -eq 0 ] && sizes=(20000)
echo "| hosts | connections | load from SQLite s | job end to end s (load + plan + write) | job peak RSS MiB |"
echo "|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
  out=$(BENCH_PLAN_HOSTS=$n go test -p 1 -count=1 -run '^$' -bench '^BenchmarkPlanServer$' -benchtime 1x -timeout 30m ./internal/app/ 2>&1) || { echo "$out"; exit 1; }
  line=$(grep '^BenchmarkPlanServer' <<<"$out")
  val() { awk -v u="$1" '{for (i=2;i<=NF;i++) if ($(i)==u) print $(i-1)}' <<<"$line"; }
  printf '| %s | %s | %.2f | %.2f | %.0f |\n' "$n" "$(val connections)" "$(val s-load)" "$(val s/plan)" "$(val peak-RSS-MiB)"
done
