#!/usr/bin/env bash
# The device build's CMake configuration, one place for scripts/gpu_check.sh (the lead tree) and scripts/gpu_ab.sh
# (a baseline tree built beside it with BASE=): same generator, type, CUDA archs and sysroot, so that an A/B of two
# commits differs in their source alone.
#   usage: bash scripts/gpu_configure.sh <source dir> <build dir> <sysroot usr dir>
set -euo pipefail
cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$3" \
  -DOMNIATTN_CUDA_ARCHS="90a;80" -DPython_EXECUTABLE="$(command -v python3)"
