#!/usr/bin/env bash
# One short device call (~3 min, session 10's fourth): which per-step work of the deterministic sm_90a dQ writer
# costs ~27% at D = 128. Calls 2-3 ruled out the wait for the turn, the completion wait, the sweep order and the
# launch chunk. OMNIATTN_BWD_DET_SKIP leaves out (BwdParams::det_skip): 1 dq_turn, 2 the __threadfence, 4 the
# release store, 8 the async-proxy fences (1, 4, 8 only with OMNIATTN_BWD_DET_WAIT=0). This commit's dq_turn
# divides in 32 bits (KvTilesOfRows::of). Two rounds of default | det | det skip 2 | nowait | nowait skip 1 | 2 |
# 4 | 8 | 15; then the deterministic GPU tests, plain and with skip 2.
# Usage (here): git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_session10d.sh
set -uo pipefail
export GPU_CHECK_STEPS="build" GPU_CHECK_BUDGET=200
bash scripts/gpu_check_snapshot.sh
cd /tmp/w || exit 1
R=/tmp/diag
rm -rf $R && mkdir -p $R
det_round() {
  local B="timeout 45 build/gpu/bench/gpu/omniattn_bench_gpu --backend sm90 --ops bwd --dims 64,128 --lengths 4096,16384 \
    --dtypes bf16 --no-gqa --reps 10"
  $B --out $R/a_default_r$1.json >/dev/null 2>&1; echo "default r$1 rc $?"
  $B --deterministic --out $R/b_det_r$1.json >/dev/null 2>&1; echo "det r$1 rc $?"
  OMNIATTN_BWD_DET_SKIP=2 $B --deterministic --out $R/b_det_skip2_r$1.json >/dev/null 2>&1; echo "det skip 2 r$1 rc $?"
  for skip in 0 1 2 4 8 15; do
    OMNIATTN_BWD_DET_WAIT=0 OMNIATTN_BWD_DET_SKIP=$skip $B --deterministic --out $R/c_nowait_skip${skip}_r$1.json \
      >/dev/null 2>&1; echo "nowait skip $skip r$1 rc $?"
  done
  tar czf $OUT/diag.tgz -C $R .
}
det_round 1
det_round 2
python3 bench/gpu/summarize_runs.py $R bwd > $OUT/det.txt 2>&1
cat $OUT/det.txt
T='Sm90Backward.DeterministicIsBitwiseRepeatable:Sm90Backward.LaunchOrdersAgree'
for skip in 0 2; do  # (skip 0 also: the walks with windows and sinks, whose KvTilesOfRows is now 32-bit)
  echo "== [$SECONDS s] tests, OMNIATTN_BWD_DET_SKIP=$skip"
  [ $skip = 0 ] && F="$T:Sm90Backward.SlidingWindowsAndSinks:Sm90Backward.DtypesAndMasks" || F=$T
  OMNIATTN_BWD_DET_SKIP=$skip timeout 90 build/gpu/tests/omniattn_gpu_tests --gtest_filter="$F" 2>&1 |
    grep -E "^\[  (PASSED|FAILED)|OK \]|Failure" | head
done
echo "== [$SECONDS s] done"
