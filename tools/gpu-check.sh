#!/usr/bin/env bash
# GPU checks on a GPU host, run from the repository root over a build folder carried there: the
# CTest label `gpu`, then compute-sanitizer memcheck on every GPU test binary. Logs and JUnit XML
# go to $OUT (if set) or <build>/gpu-check. Prepare the folder on the build machine with
#   cmake --preset cuda-gpu-only && cmake --build --preset cuda-gpu-only &&
#   ctest --test-dir build/cuda-gpu -L '^gpu$'      # discovers the test lists; GPU tests SKIP there
#
# usage: tools/gpu-check.sh [BUILD_DIR]   (default build/cuda-gpu)
# Exit status: 0 when every test passed (or was skipped) and memcheck found nothing.
set -uo pipefail

build=${1:-build/cuda-gpu}
out=${OUT:-$build/gpu-check}
mkdir -p "$out" && out=$(cd "$out" && pwd)
[ -f "$build/CMakeCache.txt" ] || { echo "gpu-check: no build folder at $build" >&2; exit 2; }

# CTest files hold the absolute paths of the machine that built them: make that path lead here.
built_in=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
if [ -n "$built_in" ] && [ "$built_in" != "$PWD" ] && [ ! -e "$built_in" ]; then
  mkdir -p "$(dirname "$built_in")" && ln -s "$PWD" "$built_in" && echo "gpu-check: linked $built_in -> $PWD"
fi
# The test lists were discovered where the build was made; keep them newer than the binaries so
# that CTest does not rediscover them with that machine's CMake modules.
touch "$build"/tests/gpu/*_tests.cmake 2>/dev/null

{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader; } 2>&1 | tee "$out/device.txt"
status=0
ctest --test-dir "$build" -L '^gpu$' --output-on-failure --output-junit "$out/ctest-gpu.xml" 2>&1 |
  tee "$out/ctest-gpu.log" || status=1
grep -q "Skipped" "$out/ctest-gpu.log" && echo "gpu-check: WARNING: tests were skipped (no usable device?)"

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for t in "$build"/tests/gpu/gpu_*_test; do
  log="$out/memcheck-$(basename "$t").log"
  if "$sanitizer" --tool memcheck --error-exitcode 86 "$t" >"$log" 2>&1; then
    echo "memcheck OK: $(basename "$t") ($(grep -E '^\[  (PASSED|SKIPPED) ' "$log" | tr '\n' ' '))"
  else
    status=1
    echo "memcheck FAILED: $(basename "$t"): see $log"
    tail -20 "$log"
  fi
done
exit $status
