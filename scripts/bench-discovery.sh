#!/usr/bin/env bash
# bench-discovery.sh: heartbeat ingest of the control plane. A load
# generator on loopback drives POST /agent/v1/heartbeat of a whole server
# (app.New: SQLite file, web middleware and access log, the agent handler,
# internal/agentstore) from 20,000 registered agents, first paced at
# 20,000 agents per minute (≈333 req/s, open loop), then flat out with 32
# concurrent clients, then paced again while inventories arrive (mixed).
# Prints p50/p99/max ms per request and req/s. Then the cost of one
# inventory merge and of a 20,000-VM RVTools upload; last, the upload and
# agent bombs of issue 9 (200 MiB CSV) with peak RSS and heartbeats.
#
#   scripts/bench-discovery.sh
#   FERRY_BENCH_AGENTS=2000 FERRY_BENCH_SECONDS=5 scripts/bench-discovery.sh   # quicker
#
# The RVTools import and agent inventory pass numbers come from
# `go test -bench . ./discovery/...` and `ferry agent inventory --stats`
# (docs/bench/discovery.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${QUICK:-}" ]; then
  export FERRY_BENCH_AGENTS=${FERRY_BENCH_AGENTS:-2000} FERRY_BENCH_SECONDS=${FERRY_BENCH_SECONDS:-5}
fi
echo "agents=${FERRY_BENCH_AGENTS:-20000} seconds per phase=${FERRY_BENCH_SECONDS:-15}"
go test -p 1 -count=1 -run '^$' -bench BenchmarkHeartbeatIngest -benchtime 1x ./internal/agentstore/
# What one agent inventory costs against an estate of 20,000 hosts, and a
# 20,000-VM RVTools export uploaded through POST /api/v1/imports.
go test -p 1 -count=1 -run '^$' -bench BenchmarkSaveInventory -benchtime 20x ./internal/agentstore/
if [ -n "${QUICK:-}" ]; then export FERRY_BENCH_VMS=${FERRY_BENCH_VMS:-2000}; fi
go test -p 1 -count=1 -run '^$' -bench BenchmarkUploadRVTools -benchtime 1x ./internal/app/ 2>&1 | grep -v '"level"'
# Issue 9: every upload and agent bomb against a real `ferry serve` process,
# with the issue's 200 MiB hosts CSV (≈ 480,000 hosts): time and peak RSS of
# the server per bomb, and the heartbeats of another tenant's agent during
# each (docs/security.md, "Uploads and agent bodies").
mib=${FERRY_BOMB_CSV_MIB:-200}
if [ -n "${QUICK:-}" ]; then mib=${FERRY_BOMB_CSV_MIB:-24}; fi
FERRY_BOMB_CSV_MIB=$mib go test -p 1 -count=1 -timeout 40m -run TestUploadBombsBoundedMemory -v ./internal/app/ 2>&1 | grep -E 'bombs_test|^(ok|FAIL|--- )'
