#!/usr/bin/env bash
# One device call: build with all cores, run the GPU tests (+ compute-sanitizer on a subset), then the forward
# benchmark and the peers (PyTorch SDPA cuDNN/FA2, FlexAttention) in the same run. Logs and JSON go to $OUT.
# Needs .carry/ (scripts/make_gpu_carry.sh) named in the device call's carry: the GPU machine installs nothing.
#   GPU_CHECK_STEPS="build tests sanitize bench peers" (default: all) selects steps.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build/gpu-out}
mkdir -p "$OUT"
STEPS=${GPU_CHECK_STEPS:-"build tests sanitize bench peers"}
SYSROOT=$PWD/.carry/sysroot/usr
export LD_LIBRARY_PATH=$SYSROOT/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
LOG=$OUT/gpu_check.log
BUILD=build/gpu
step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
say() { echo "== $* ($(date +%T))" | tee -a "$LOG"; }

say "machine"
{ nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,driver_version --format=csv; nvcc --version | tail -2; g++ --version | head -1; } >>"$LOG" 2>&1

if step build; then
  say "build"
  cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$SYSROOT" \
    -DOMNIATTN_CUDA_ARCHS="90a;80" >>"$LOG" 2>&1 || { say "configure FAILED"; tail -30 "$LOG"; exit 1; }
  start=$(date +%s)
  cmake --build $BUILD -j "$(nproc)" >>"$LOG" 2>&1 || { say "build FAILED"; grep -E "error|Error" "$LOG" | head -40; exit 1; }
  say "built in $(( $(date +%s) - start )) s"
fi

status=0
if step tests; then
  say "gpu tests"
  (cd $BUILD && ctest -L gpu --output-on-failure) >>"$LOG" 2>&1 || { status=1; say "GPU TESTS FAILED"; }
  grep -E "tests passed|FAILED|\[  FAILED|PASSED" "$LOG" | tail -15
fi

if step sanitize; then
  say "compute-sanitizer memcheck + racecheck (subset)"
  filter=${SANITIZE_FILTER:-"*Sanitize*"}
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 $BUILD/tests/omniattn_gpu_tests --gtest_filter="$filter" \
      >"$OUT/sanitize_$tool.log" 2>&1 && say "$tool clean" || { status=1; say "$tool FOUND ERRORS"; tail -20 "$OUT/sanitize_$tool.log"; }
  done
fi

if step bench; then
  say "omniattn forward benchmark"
  ${BENCH_CMD:-$BUILD/bench/gpu/omniattn_bench_gpu --commit "${OMNIATTN_COMMIT:-$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)}" --out "$OUT/ours.json"} 2>&1 | tee -a "$LOG" | tail -60
fi

if step peers; then
  say "peers (same run)"
  python3 .carry/peers_gpu.py --suite ${PEER_SUITES:-fwd,flex} --dims ${PEER_DIMS:-64,128} \
    --lengths ${PEER_LENGTHS:-1024,2048,4096,8192,16384,32768} --out "$OUT/peers.json" >>"$LOG" 2>&1 || say "peers failed"
  python3 scripts/merge_results.py "$OUT/ours.json" "$OUT/peers.json" --out "$OUT/fwd.json" 2>&1 | tee -a "$LOG"
fi
say "done (status $status)"
exit $status
