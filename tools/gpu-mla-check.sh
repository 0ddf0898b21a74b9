#!/usr/bin/env bash
# Sparse MLA GPU checks on a GPU host, over a carried CUDA build folder: the decode/prefill suites,
# compute-sanitizer memcheck and racecheck on reduced case counts, then the decode benchmark.
# Logs go to $OUT (if set) or <build>/gpu-mla-check. Every step has its own time limit, so one
# hung step cannot take the rest with it.
#
# usage: tools/gpu-mla-check.sh [BUILD_DIR] [STEPS]   (default build/cuda-gpu; STEPS a comma list
#        of tests,memcheck,racecheck,bench,bench-quick; default tests,memcheck,racecheck,bench)
set -uo pipefail

build=${1:-build/cuda-gpu}
steps=${2:-tests,memcheck,racecheck,bench}
out=${OUT:-$build/gpu-mla-check}
mkdir -p "$out"
t="$build/tests/gpu"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
status=0
has() { [[ ",$steps," == *",$1,"* ]]; }
run() {  # name limit_s command...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - t0)) s"
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |cases passed|cases in|ERROR SUMMARY|RACECHECK SUMMARY|Failure|error/budget|Expected|Which is' "$out/$name.log" | head -40
  [ $rc -eq 0 ] || status=1
}

{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; } 2>&1 | tee "$out/device.txt"
if has tests; then
  run decode 300 "$t/gpu_sparse_mla_decode_test"
  run prefill 200 "$t/gpu_sparse_mla_prefill_test"
fi
if has memcheck; then
  for s in decode prefill; do
    DSA_GPU_CASES=40 run "memcheck-$s" 240 "$sanitizer" --tool memcheck --error-exitcode 86 "$t/gpu_sparse_mla_${s}_test"
  done
fi
if has racecheck; then
  DSA_GPU_CASES=6 run racecheck-decode 240 "$sanitizer" --tool racecheck --error-exitcode 86 "$t/gpu_sparse_mla_decode_test" \
    --gtest_filter='*PropertySuite*'
fi
if has bench; then
  run bench 420 "$build/bench/gpu/gpu_sparse_mla_decode_bench" --json "$out/sparse_mla_decode_bench.json"
  tail -90 "$out/bench.log"
fi
if has bench-quick; then
  run bench-quick 200 "$build/bench/gpu/gpu_sparse_mla_decode_bench" --quick --json "$out/sparse_mla_decode_bench_quick.json"
  tail -30 "$out/bench-quick.log"
fi
exit $status
