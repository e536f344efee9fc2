#!/usr/bin/env bash
# Builds and runs the CUDA decode kernels under the host emulation (no GPU needed). CTest runs the same tests as
# omniattn_decode_emulator_tests (label cpu); this script is the quick loop without a full build.
#   bash tests/gpu/decode_emulator/run.sh [--gtest_filter=...]
# Uses (and if needed builds) a CPU-only build of the library in $BUILD (default build/emu-decode).
set -euo pipefail
cd "$(dirname "$0")/../../.."
B=${BUILD:-build/emu-decode}
if [ ! -f "$B/libomniattn.a" ]; then
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMNIATTN_CUDA=OFF -DOMNIATTN_TESTS=OFF >/dev/null
fi
ninja -C "$B" omniattn
CXX=(g++ -std=c++20 -O2 -g -Iinclude -Isrc -Itests -DOMNIATTN_WITH_CUDA=0)
"${CXX[@]}" -c tests/gpu/decode_emulator/decode_emulated.cpp -o "$B/decode_emulated.o"
"${CXX[@]}" tests/gpu/decode_emulator/decode_emulator_test.cpp "$B/decode_emulated.o" "$B/libomniattn.a" \
  -lgtest -lgtest_main -lfmt -lhwy -fopenmp -o "$B/decode_emulator_test"
"$B/decode_emulator_test" "$@"
