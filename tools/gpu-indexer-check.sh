#!/usr/bin/env bash
# The indexer's GPU checks on a GPU host, from the repository root over a carried CUDA build
# folder: the six suites (paged_mqa_logits, mqa_logits, index_k_store, index_k_gather, topk,
# dsa_decode_step) in full, compute-sanitizer memcheck over each with DSA_SANITIZER_CASES
# (default 25) cases per property loop, then the indexer benchmark.
# Logs go to $OUT (if set) or <build>/gpu-indexer-check; the last lines printed are a summary.
#
# usage: tools/gpu-indexer-check.sh [BUILD_DIR] [--quick-bench|--no-bench]   (default build/cuda-gpu)
set -uo pipefail
build=${1:-build/cuda-gpu}
bench_mode=${2:-}
out=${OUT:-$build/gpu-indexer-check}
mkdir -p "$out"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
nvidia-smi -L 2>&1 | tee "$out/device.txt"
status=0
summary=()
unset DSA_GPU_MAX_CASES  # the suites run every case
suites=(paged_mqa_logits mqa_logits index_k_store index_k_gather topk dsa_decode_step)
for t in "${suites[@]}"; do
  bin="$build/tests/gpu/gpu_${t}_test"
  start=$(date +%s)
  if timeout 300 "$bin" >"$out/test_$t.log" 2>&1; then r=PASS; else r=FAIL; status=1; fi
  summary+=("$t: $r in $(( $(date +%s) - start )) s; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/test_$t.log" | tr '\n' ' ')")
  grep -E '^\[ judged|^\[  FAILED|Failure|error' "$out/test_$t.log" | head -12
done
for t in "${suites[@]}"; do
  bin="$build/tests/gpu/gpu_${t}_test"
  start=$(date +%s)
  if DSA_GPU_MAX_CASES=${DSA_SANITIZER_CASES:-25} timeout 240 "$sanitizer" --tool memcheck --error-exitcode 86 "$bin" \
      >"$out/memcheck_$t.log" 2>&1; then r=clean; else r=FAILED; status=1; fi
  summary+=("memcheck $t: $r in $(( $(date +%s) - start )) s; $(grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' "$out/memcheck_$t.log" | tr '\n' ' ')")
done
if [ "$bench_mode" != "--no-bench" ]; then
  flag=; [ "$bench_mode" = "--quick-bench" ] && flag=--quick
  timeout 300 "$build/bench/gpu/gpu_indexer_bench" $flag 2>&1 | tee "$out/bench.log" || status=1
fi
printf '%s\n' "${summary[@]}"
exit $status
