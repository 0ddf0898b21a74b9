#!/usr/bin/env bash
# Builds the libFuzzer target of the case-file reader under ASan + UBSan and runs it (issue 5.6).
#
# usage: tools/run-parser-fuzz.sh [SECONDS] [--merge]
#   SECONDS   fuzzing time budget (default 60)
#   --merge   afterwards, merge the inputs that add coverage into data/fuzz/case_file, the
#             committed corpus (for maintainers; CI leaves the tree untouched)
# Environment:
#   DSA_FUZZ_CXX    clang++ with the libFuzzer runtime (default clang++-14, else clang++)
#   DSA_FUZZ_BUILD  build folder (default build/fuzz); its corpus/ keeps what runs discover
#   DSA_FUZZ_SEED   libFuzzer -seed (default: a fresh one, printed so that a run can be replayed)
# Exit status: 0 when the budget ran out without a finding; libFuzzer's non-zero status on a crash,
# leak, timeout or sanitizer report, whose reproducer lands in $DSA_FUZZ_BUILD/artifacts/.
# Replay one input: $DSA_FUZZ_BUILD/case_file_fuzzer FILE
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=60
merge=0
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    ''|*[!0-9]*) echo "usage: $0 [SECONDS] [--merge]" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done

cxx=${DSA_FUZZ_CXX:-}
if [[ -z "$cxx" ]]; then
  if command -v clang++-14 >/dev/null; then cxx=clang++-14; else cxx=clang++; fi
fi
build=${DSA_FUZZ_BUILD:-$root/build/fuzz}
corpus=$root/data/fuzz/case_file
dict=$root/fuzz/libfuzzer/case_file.dict
bin=$build/case_file_fuzzer
sources=("$root/fuzz/libfuzzer/case_file_fuzzer.cpp" "$root/oracle/src/case_file.cpp")
headers=("$root/oracle/include/dsa/case_file.hpp" "$root/reference/include/dsa/error.hpp")
mkdir -p "$build/corpus" "$build/artifacts"

stale=0
[[ -x "$bin" ]] || stale=1
for f in "${sources[@]}" "${headers[@]}" "$0"; do [[ "$f" -nt "$bin" ]] && stale=1; done
if (( stale )); then
  echo "run-parser-fuzz: building $bin with $cxx"
  "$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/oracle/include" -I"$root/reference/include" \
    "${sources[@]}" -o "$bin"
fi

seed=${DSA_FUZZ_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}
log=$build/last-run.log
echo "run-parser-fuzz: ${seconds}s, -seed=$seed, corpus $corpus (read) + $build/corpus (grown)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
"$bin" -max_total_time="$seconds" -seed="$seed" -dict="$dict" -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/artifacts/" \
  "$build/corpus" "$corpus" 2>&1 | tee "$log" | grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)|# Uses: '
status=${PIPESTATUS[0]}
set -e

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
echo "run-parser-fuzz: exit $status; ${runs:-?} executions, ${rate:-?} exec/s over ${seconds}s;" \
     "committed corpus $(ls "$corpus" | wc -l) files, grown corpus $(ls "$build/corpus" | wc -l) files"
if (( status != 0 )); then
  echo "run-parser-fuzz: FAILED with seed $seed; reproducer(s) in $build/artifacts/:" >&2
  ls -1 "$build/artifacts" >&2
  exit "$status"
fi

if (( merge )); then
  "$bin" -merge=1 -dict="$dict" -max_len=8192 "$corpus" "$build/corpus" 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
  echo "run-parser-fuzz: committed corpus now $(ls "$corpus" | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
fi
