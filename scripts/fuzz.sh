#!/usr/bin/env bash
# Runs every Fuzz* target in the repository for a while each.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/func //'); do
    echo "== $pkg $fn ($t)"
    go test "$pkg" -run '^$' -fuzz "^${fn}\$" -fuzztime "$t"
  done
done
