#!/usr/bin/env bash
# Installs the Debian packages dsa-oracle needs that are missing (idempotent; a no-op in well under
# a second when everything is there) and the one PyPI package the Python round-trip test uses.
# Fails with a clear message when a package cannot be had.
set -euo pipefail

packages=(
  cmake make g++ git pkg-config
  libeigen3-dev librapidcheck-dev libgtest-dev nlohmann-json3-dev libcli11-dev libfmt-dev libbenchmark-dev
  clang libclang-rt-14-dev          # libFuzzer target for the case-file parser
  hipcc libamdhip64-dev             # HIP compile check (gfx90a); nothing runs on AMD here
  python3 python3-numpy python3-pip # case-file round trip with Python's safetensors
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} missing Debian package(s): ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || { echo "setup: error: 'apt-get update' failed; Debian's package servers must be reachable" >&2; exit 1; }
  for p in "${missing[@]}"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      echo "setup: error: Debian package '$p' cannot be had from the configured sources (apt-cache show $p found nothing)" >&2
      exit 1
    fi
  done
  if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/dsa-setup-apt.log 2>&1; then
    tail -20 /tmp/dsa-setup-apt.log >&2
    echo "setup: error: apt-get install failed for: ${missing[*]} (log: /tmp/dsa-setup-apt.log)" >&2
    exit 1
  fi
else
  echo "setup: all ${#packages[@]} Debian packages present"
fi

# Python's safetensors (PyPI only; not packaged by Debian). Optional: without it the Python
# round-trip test reports itself skipped, visibly.
if ! /usr/bin/python3 -c "import safetensors" 2>/dev/null; then
  if /usr/bin/python3 -m pip install -q --break-system-packages safetensors >/tmp/dsa-setup-pip.log 2>&1; then
    echo "setup: installed Python package safetensors"
  else
    echo "setup: warning: could not install Python package safetensors (see /tmp/dsa-setup-pip.log); the Python round-trip test will report SKIPPED"
  fi
fi
