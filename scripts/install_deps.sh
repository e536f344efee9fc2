#!/usr/bin/env bash
# Installs what the build needs when it is missing, announcing each install.
#   scripts/install_deps.sh            C++ toolchain and libraries (Debian packages)
#   scripts/install_deps.sh --python   also the Python packages of the tests and benchmarks (PyPI): nanobind (the
#                                      extension), pytest, numpy, torch. PyPI's Linux torch wheel is the CUDA
#                                      build (~3 GB with its nvidia-* wheels; ~1 min on a fast link); it runs
#                                      fine on a CPU-only machine.
set -euo pipefail
packages=(cmake ninja-build g++ libgtest-dev libbenchmark-dev libhwy-dev libfmt-dev nlohmann-json3-dev libcli11-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[omniattn] installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--python" ]; then
  # The extension needs Python's headers (Python.h); Debian's python3 keeps them in python3-dev.
  if ! python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    echo "[omniattn] installing Debian package: python3-dev (Python.h for the extension)"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-dev >/dev/null
  fi
  for m in nanobind pytest numpy torch; do
    if ! python3 -c "import $m" >/dev/null 2>&1; then
      echo "[omniattn] installing Python package from PyPI: $m"
      python3 -m pip install -q "$m"
    fi
  done
fi
if command -v nvcc >/dev/null 2>&1; then echo "[omniattn] nvcc found: CUDA backends will be compiled"; else echo "[omniattn] no nvcc: CPU-only build"; fi
