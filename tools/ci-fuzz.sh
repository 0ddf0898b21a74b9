#!/usr/bin/env bash
# CI fuzz budget (issue 6.5), called by .ci/run and by `ctest -L fuzz`:
#  1. the mutation self-test: every mutant of the catalog must be killed within 1000 cases under
#     the fixed CI seeds (dsa-oracle selftest);
#  2. the correct kernels over a fixed case budget and the fixed CI seed list (reproducible);
#  3. the same over one fresh seed, printed first so that a failure can be replayed.
# Campaigns run as two GoogleTest-protocol shards side by side (the CI machine has 2 cores).
# Reports land in $DSA_FUZZ_REPORTS (default build/reports/fuzz); shrunk counterexamples in its
# corpus/ folder (copy them to data/corpus/ to keep them replayed forever).
#
# usage: tools/ci-fuzz.sh [--bin PATH/TO/dsa-oracle]   (default: build the cpu preset's dsa-oracle)
# environment: DSA_FUZZ_FIXED_CASES (default 40000), DSA_FUZZ_FRESH_CASES (default 10000),
#              DSA_FUZZ_FRESH_SEED (default: from /dev/urandom), DSA_FUZZ_SHARDS (default 2)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--bin dsa-oracle]" >&2; exit 2 ;;
  esac
done
if [[ -z "$bin" ]]; then
  (cd "$root" && cmake --preset cpu >/dev/null && cmake --build --preset cpu --target dsa-oracle)
  bin=$root/build/cpu/oracle/dsa-oracle
fi
reports=${DSA_FUZZ_REPORTS:-$root/build/reports/fuzz}
fixed_cases=${DSA_FUZZ_FIXED_CASES:-40000}
fresh_cases=${DSA_FUZZ_FRESH_CASES:-10000}
shards=${DSA_FUZZ_SHARDS:-2}
fresh=${DSA_FUZZ_FRESH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
export DSA_SOURCE_DIR=$root
mkdir -p "$reports"
start=$SECONDS
echo "ci-fuzz: fixed seeds 'ci', fresh seed $fresh — replay a fresh-seed failure with:"
echo "  $bin fuzz --budget $fresh_cases --seeds $fresh   (under GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=i)"

echo "== mutation self-test"
"$bin" selftest --budget 1000 --seeds ci --report-dir "$reports"

# Runs one campaign as $shards shards in parallel; fails if any shard fails.
campaign() {
  local name=$1 cases=$2 seeds=$3
  echo "== campaign '$name': $cases cases, seeds $seeds, $shards shards"
  local pids=() status=0
  for ((i = 0; i < shards; i++)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i \
      "$bin" fuzz --budget "$cases" --seeds "$seeds" --no-progress \
      --report-dir "$reports/$name" --corpus-dir "$reports/corpus" >"$reports/$name-shard$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < shards; i++)); do
    if ! wait "${pids[$i]}"; then status=1; fi
    echo "-- shard $i of $shards:"
    grep -E "^(PASS|FAIL)|replay:|^\| \*\*" "$reports/$name-shard$i.log" || true
  done
  return $status
}

status=0
campaign fixed "$fixed_cases" ci || status=1
campaign fresh "$fresh_cases" "$fresh" || status=1
echo "ci-fuzz: $([[ $status == 0 ]] && echo PASS || echo FAIL) in $((SECONDS - start)) s (fresh seed $fresh); reports in $reports"
exit $status
