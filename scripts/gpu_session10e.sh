#!/usr/bin/env bash
# One short device call (~3 min, session 10's fifth): the deterministic sm_90a dQ writer with less per-step work
# (call 4 found that each part of it cost 5-12%: docs/kernels.md backward log step 17): dq_turn_fast, .global proxy
# fences, no __threadfence. OMNIATTN_BWD_DET_OLD puts parts back (BwdParams::det_old: 1 dq_turn, 2 __threadfence,
# 8 fence.proxy.async over every state space). Two rounds of default | det | det old 1 | 2 | 8 | 11 | nowait with
# skip 13 (no turn, release or fence: the bound); then the deterministic and mask GPU tests and compute-sanitizer
# (memcheck, racecheck) on Sm90BackwardSanitize.
# Usage (here): git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_session10e.sh
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
  for old in 1 2 8 11; do
    OMNIATTN_BWD_DET_OLD=$old $B --deterministic --out $R/c_det_old${old}_r$1.json >/dev/null 2>&1
    echo "det old $old r$1 rc $?"
  done
  OMNIATTN_BWD_DET_WAIT=0 OMNIATTN_BWD_DET_SKIP=13 $B --deterministic --out $R/d_nowait_skip13_r$1.json >/dev/null 2>&1
  echo "nowait skip 13 r$1 rc $?"
  tar czf $OUT/diag.tgz -C $R .
}
det_round 1
det_round 2
python3 bench/gpu/summarize_runs.py $R bwd > $OUT/det.txt 2>&1
cat $OUT/det.txt
T='Sm90Backward.DeterministicIsBitwiseRepeatable:Sm90Backward.LaunchOrdersAgree:Sm90Backward.SlidingWindowsAndSinks'
T="$T:Sm90Backward.DtypesAndMasks:Sm90Backward.HeadDim64:Sm90Backward.BlockMasks:Sm90Backward.VarlenSeqUsedAndGroups"
echo "== [$SECONDS s] tests"
timeout 120 build/gpu/tests/omniattn_gpu_tests --gtest_filter="$T" 2>&1 | grep -E "^\[  (PASSED|FAILED)|OK \]|Failure" | head -20
for tool in memcheck racecheck; do
  echo "== [$SECONDS s] $tool"
  timeout 90 compute-sanitizer --tool $tool --error-exitcode 3 build/gpu/tests/omniattn_gpu_tests \
    --gtest_filter='Sm90BackwardSanitize*' > $OUT/$tool.log 2>&1; echo "$tool rc $?"; tail -3 $OUT/$tool.log
done
echo "== [$SECONDS s] done"
