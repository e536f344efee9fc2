#!/usr/bin/env bash
# Builds and runs the sm_80 forward kernels under the host emulation (no GPU needed; g++ only).
#   bash tests/gpu/emulator/run.sh [--gtest_filter=...]
# Uses (and if needed builds) a CPU-only build of the library in $BUILD (default build/emu).
set -euo pipefail
cd "$(dirname "$0")/../../.."
B=${BUILD:-build/emu}
if [ ! -f "$B/libomniattn.a" ]; then
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMNIATTN_CUDA=OFF -DOMNIATTN_TESTS=OFF >/dev/null
  ninja -C "$B" omniattn
fi
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
CXX=(g++ -std=c++20 -O2 -g -Iinclude -Isrc -Itests -I"$CUDA_HOME/include" -DOMNIATTN_WITH_CUDA=0)
"${CXX[@]}" -c tests/gpu/emulator/emulated_kernels.cpp -o "$B/emulated_kernels.o"
"${CXX[@]}" -x c++ -c src/cuda/flash/fwd_arguments.cu -o "$B/fwd_arguments_host.o"
"${CXX[@]}" tests/gpu/emulator/sm80_emulator_test.cpp tests/gpu/sm80_case.cpp "$B/emulated_kernels.o" \
  "$B/fwd_arguments_host.o" "$B/libomniattn.a" -lgtest -lgtest_main -lfmt -lhwy -fopenmp \
  -L"$CUDA_HOME/lib64" -lcudart -o "$B/sm80_emulator_test"
"$B/sm80_emulator_test" "$@"
