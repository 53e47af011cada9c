#!/usr/bin/env bash
# Regenerates ent, gqlgen and migrations into the work tree and fails if
# anything differs from what was there: generated code must be reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."
snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
paths=(ent graph gqlgen.yml)
tar -cf "$snap/before.tar" "${paths[@]}"
make -s generate GO="${GO:-go}" >/dev/null 2>"$snap/err" || { cat "$snap/err"; exit 1; }
mkdir "$snap/before" && tar -xf "$snap/before.tar" -C "$snap/before"
if ! diff -r "$snap/before/ent" ent >"$snap/diff" || ! diff -r "$snap/before/graph" graph >>"$snap/diff"; then
  echo "generated code differs from what make generate produces:" >&2
  head -50 "$snap/diff" >&2
  exit 1
fi
echo "generated code is reproducible"
