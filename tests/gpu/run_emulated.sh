#!/usr/bin/env bash
# Builds and runs one family of CUDA kernels under the host emulation (src/cuda/common/emulation.hpp), without a GPU
# and without a full build: the quick loop while editing a kernel. CTest runs the same tests (label cpu).
#   bash tests/gpu/run_emulated.sh decode|graph [--gtest_filter=...]
# Uses (and if needed builds) a CPU-only build of the library in $BUILD (default build/emu-<family>).
set -euo pipefail
family=${1:?usage: run_emulated.sh decode|graph [gtest flags]}
shift
cd "$(dirname "$0")/../.."
B=${BUILD:-build/emu-$family}
if [ ! -f "$B/build.ninja" ]; then
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMNIATTN_CUDA=OFF -DOMNIATTN_TESTS=OFF >/dev/null
fi
ninja -C "$B" omniattn
src=tests/gpu/${family}_emulator
CXX=(g++ -std=c++20 -O2 -g -Iinclude -Isrc -Itests -DOMNIATTN_WITH_CUDA=0)
"${CXX[@]}" -c "$src/${family}_emulated.cpp" -o "$B/${family}_emulated.o"
"${CXX[@]}" "$src/${family}_emulator_test.cpp" "$B/${family}_emulated.o" "$B/libomniattn.a" \
  -lgtest -lgtest_main -lfmt -lhwy -fopenmp -o "$B/${family}_emulator_test"
"$B/${family}_emulator_test" "$@"
