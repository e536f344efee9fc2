#!/usr/bin/env bash
# Builds and runs the CUDA graph-attention kernels under the host emulation (no GPU needed; g++ and the CUDA headers
# are not used: the emulation names its own types).
#   bash tests/gpu/graph_emulator/run.sh [--gtest_filter=...]
# Uses (and if needed builds) a CPU-only build of the library in $BUILD (default build/emu-graph).
set -euo pipefail
cd "$(dirname "$0")/../../.."
B=${BUILD:-build/emu-graph}
if [ ! -f "$B/build.ninja" ]; then
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMNIATTN_CUDA=OFF -DOMNIATTN_TESTS=OFF >/dev/null
fi
ninja -C "$B" omniattn
CXX=(g++ -std=c++20 -O2 -g -Iinclude -Isrc -Itests -DOMNIATTN_WITH_CUDA=0)
"${CXX[@]}" -c tests/gpu/graph_emulator/graph_emulated.cpp -o "$B/graph_emulated.o"
"${CXX[@]}" tests/gpu/graph_emulator/graph_emulator_test.cpp "$B/graph_emulated.o" "$B/libomniattn.a" \
  -lgtest -lgtest_main -lfmt -lhwy -fopenmp -o "$B/graph_emulator_test"
"$B/graph_emulator_test" "$@"
