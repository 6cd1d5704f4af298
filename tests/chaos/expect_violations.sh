#!/usr/bin/env bash
# Runs a chaos run that must be caught: passes only when it finished (exit 1,
# not 2) with lost messages or lost sessions in its summary.
set -u
out="$1"; shift
rm -rf "$out"
"$@"
code=$?
[ "$code" -eq 77 ] && exit 77
if [ "$code" -ne 1 ]; then
  echo "expected the checker to fail the run (exit 1), got exit $code" >&2
  exit 1
fi
if ! grep -Eq '"(lost|session)": [1-9]' "$out/summary.json"; then
  echo "the run failed, but not with lost messages or sessions:" >&2
  cat "$out/summary.json" >&2
  exit 1
fi
echo "caught: $(tr -d '\n ' < "$out/summary.json" | grep -o '"violations":{[^}]*}')"
