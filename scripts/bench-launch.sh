#!/bin/sh
# bench-launch.sh: issue 16's cutover downtime (docs/benchmarks.md): a 2 GiB
# Debian server with 1 % of its blocks changed since the last pass, quiesced,
# final delta, live copy adapted, booted in qemu and checked. Needs root and
# qemu (make deps); builds the test image first if its recipe changed.
set -eu
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench BenchmarkCutoverDowntime -benchtime 1x -timeout 40m ./jobs/migration/
