#!/usr/bin/env bash
# The main job: builds the CPU project and runs `dsa-oracle run` — the self-check of every
# available variant against the gold oracle — writing Markdown, JSON and JUnit reports.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset cpu >/dev/null
cmake --build --preset cpu --target dsa-oracle
mkdir -p build/reports
exec build/cpu/oracle/dsa-oracle run --out build/reports "$@"
