#!/usr/bin/env bash
# Runs every Fuzz* target in the repository for a while each (default 10s;
# `make fuzz FUZZTIME=30s`). Every target runs even when one fails; the
# failures are listed at the end and make the exit status non-zero. A crasher
# is saved by Go under the package's testdata/fuzz and replays in `go test`.
set -uo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
failed=()
while read -r f; do
  pkg=./$(dirname "${f#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/func //'); do
    echo "== $pkg $fn ($t)"
    go test "$pkg" -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" || failed+=("$pkg $fn")
  done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort)
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all fuzz targets ran clean"
