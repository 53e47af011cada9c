#!/usr/bin/env bash
# bench-planner.sh: end-to-end speed and peak RSS of `ferry plan` (and
# `ferry plan assess`) on generated estates. Prints a markdown table.
# Usage: scripts/bench-planner.sh [sizes...]   (default: 20000 100000)
# Needs /usr/bin/time (Debian package "time").
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-20000 100000}")
[ $# -eq 0 ] && sizes=(20000 100000)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/ferry" ./cmd/ferry
cat > "$work/plan.yaml" <<'YAML'
start: 2026-12-07
timezone: Asia/Shanghai
max_hosts_per_wave: 100
bandwidth: 1Gbps
compression_ratio: 0.6
transfer_windows:
  - when: "Mon-Thu 19:00-07:00"
  - when: "Fri 19:00-24:00"
  - when: "Sat-Sun 00:00-24:00"
  - when: "Mon 00:00-07:00"
cutover_windows: ["Sat 22:00-04:00", "Wed 23:00-03:00"]
parallel_migrations: 20
pilot: {hosts: 10}
YAML
echo "| hosts | connections | estate JSON | command | wall s | user s | sys s | peak RSS MiB | waves |"
echo "|---:|---:|---:|---|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}" "${sizes[-1]}u"; do
  # The last size runs twice: once as generated (70 % of applications
  # labelled), once with no labels at all ("u"), which the planner must infer.
  labels=0.7
  if [ "${n%u}" != "$n" ]; then labels=0; fi
  "$work/ferry" estate generate --hosts "${n%u}" --seed 1 --labels "$labels" --out "$work/e$n.json"
  conns=$(grep -o '"src"' "$work/e$n.json" | wc -l)
  shown=$n
  [ "$labels" = 0 ] && shown="${n%u} (no labels)"
  size=$(du -m "$work/e$n.json" | cut -f1)
  for what in plan assess; do
    if [ "$what" = plan ]; then
      args=(plan --estate "$work/e$n.json" --constraints "$work/plan.yaml" --out "$work/p$n.json")
    else
      args=(plan assess --estate "$work/e$n.json" --constraints "$work/plan.yaml" --out "$work/a$n.json")
    fi
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$work/ferry" "${args[@]}" > "$work/out.txt"
    read -r wall user sys rss < "$work/time"
    waves="-"
    [ "$what" = plan ] && waves=$(grep -oE '^[0-9]+ waves' "$work/out.txt" | cut -d' ' -f1)
    echo "| $shown | $conns | ${size} MB | ferry $what | $wall | $user | $sys | $((rss / 1024)) | $waves |"
  done
done
