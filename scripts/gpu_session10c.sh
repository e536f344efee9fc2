#!/usr/bin/env bash
# One short device call (~2.5 min, session 10's third): the deterministic backward's launch order. Call 2 showed that
# neither the wait for the turns, nor the completion wait, nor the sweep order explains its cost; what is left is
# the launch in chunks of 8 tiles of every head (BwdParams::dq_chunk), which spreads a wave over ~16 heads' Q / dO
# (~128 MB at 16k) where the default mode's head-at-a-time wave keeps one head's 8 MB in L2.
#   det   dense sm_90a backward, D = 64 / 128, 4k / 16k, causal and not, two rounds of: default | --deterministic
#         (chunk 8) | OMNIATTN_BWD_DET_CHUNK=0 | OMNIATTN_BWD_DET_CHUNK=0 + OMNIATTN_BWD_DET_WAIT=0
#   then Sm90Backward.DeterministicIsBitwiseRepeatable and LaunchOrdersAgree
# Usage (here): git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_session10c.sh
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
  $B --deterministic --out $R/b_det_chunk8_r$1.json >/dev/null 2>&1; echo "det r$1 rc $?"
  OMNIATTN_BWD_DET_CHUNK=0 $B --deterministic --out $R/c_det_chunk0_r$1.json >/dev/null 2>&1; echo "chunk0 r$1 rc $?"
  OMNIATTN_BWD_DET_CHUNK=0 OMNIATTN_BWD_DET_WAIT=0 $B --deterministic --out $R/d_det_chunk0_nowait_r$1.json \
    >/dev/null 2>&1; echo "chunk0 nowait r$1 rc $?"
  tar czf $OUT/diag.tgz -C $R .
}
det_round 1
det_round 2
python3 bench/gpu/summarize_runs.py $R bwd > $OUT/det.txt 2>&1
cat $OUT/det.txt
timeout 100 build/gpu/tests/omniattn_gpu_tests --gtest_filter='Sm90Backward.DeterministicIsBitwiseRepeatable:Sm90Backward.LaunchOrdersAgree' 2>&1 | grep -E "^\[  (PASSED|FAILED)|OK \]|Failure" | head
echo "== [$SECONDS s] done"
