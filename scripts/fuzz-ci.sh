#!/usr/bin/env bash
# fuzz-ci.sh: every fuzz target (fuzz/fuzz_*.c: the IRC wire format, the op
# codec, the replica core's group input) under libFuzzer for FUZZ_SECONDS
# each (default 200: 10 minutes for the three), starting from its kept
# corpus; new inputs that reach new code are merged back into
# fuzz/corpus/<name>/ (commit them). A crash, leak or sanitizer report
# fails the run and leaves the input in build-fuzz/artifacts/.
# Usage: scripts/fuzz-ci.sh [build dir]   (make fuzz-ci builds it first)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-200}
mkdir -p "$B/artifacts"
status=0
for target in "$B"/fuzz_*; do
  [ -x "$target" ] || continue
  case "$target" in *_replay) continue ;; esac
  name=$(basename "$target")
  corpus=fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  echo "fuzz-ci: $name for ${SECONDS_EACH}s from $corpus"
  if ! "$target" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$B/artifacts/$name-" \
      "$work" "$corpus" > "$B/artifacts/$name.log" 2>&1; then
    echo "fuzz-ci: $name FAILED: see $B/artifacts/$name.log and $B/artifacts/$name-*"
    tail -30 "$B/artifacts/$name.log"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$B/artifacts/$name.log" | sed "s/^/fuzz-ci: $name /" || true
  before=$(ls "$corpus" | wc -l)
  "$target" -merge=1 "$corpus" "$work" > /dev/null 2>&1 || true
  echo "fuzz-ci: $name corpus $before -> $(ls "$corpus" | wc -l) inputs"
  rm -rf "$work"
done
exit $status
