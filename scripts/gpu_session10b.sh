#!/usr/bin/env bash
# One device call (~8 min at most, session 10's second): the decode table with bulk K/V row copies on by default
# (peers in the same run), and what makes the deterministic backward slow (call 1: not the wait for the turns).
#   tests     Decode* (bulk rows by default, DecodeGpu.ChunkCopies the 16-byte path); memcheck + racecheck on
#             DecodeGpu.SanitizeSmall (both load modes)
#   decode    gpu_check.sh's decode step: decode.json (ours + SDPA cuDNN / flash)
#   det       dense sm_90a backward, D = 64 / 128, 4k / 16k, causal and not, two rounds of:
#               default | default, OMNIATTN_BWD_DQ_COMPLETE=1 (wait for each reduction's completion) |
#               the same with OMNIATTN_BWD_ROTATE=0 (every CTA sweeps in the same order) | --deterministic |
#               --deterministic, OMNIATTN_BWD_DET_WAIT=0 | the same + OMNIATTN_BWD_DET_ROTATE=1 (rotated sweeps)
# Usage (here): bash scripts/make_gpu_carry.sh; git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_session10b.sh
# Output under $OUT: gpu_check.log, logs.tgz, decode.json, raw.tgz, det.txt (table), diag.tgz (det JSON)
set -uo pipefail
export GPU_CHECK_STEPS="build tests sanitize decode" GPU_CHECK_BUDGET=330
export GPU_TEST_FILTER='Decode*' GPU_TEST_TIMEOUT=80 SANITIZE_FILTER='DecodeGpu.SanitizeSmall'
export GPU_SMOKE_FILTER='DecodeGpu.BulkCopies' GPU_SMOKE_TIMEOUT=60
bash scripts/gpu_check_snapshot.sh
cd /tmp/w || exit 1
R=/tmp/diag
rm -rf $R && mkdir -p $R
left() { [ $SECONDS -lt ${1:-420} ]; }  # seconds since the call began: skip what would not finish
det_round() {
  local B="timeout 45 build/gpu/bench/gpu/omniattn_bench_gpu --backend sm90 --ops bwd --dims 64,128 --lengths 4096,16384 \
    --dtypes bf16 --no-gqa --reps 10"
  $B --out $R/a_default_r$1.json >/dev/null 2>&1; echo "default r$1 rc $?"
  OMNIATTN_BWD_DQ_COMPLETE=1 $B --out $R/b_complete_r$1.json >/dev/null 2>&1; echo "complete r$1 rc $?"
  OMNIATTN_BWD_DQ_COMPLETE=1 OMNIATTN_BWD_ROTATE=0 $B --out $R/c_complete_unrotated_r$1.json >/dev/null 2>&1
  echo "complete unrotated r$1 rc $?"
  $B --deterministic --out $R/d_det_r$1.json >/dev/null 2>&1; echo "det r$1 rc $?"
  OMNIATTN_BWD_DET_WAIT=0 $B --deterministic --out $R/e_det_nowait_r$1.json >/dev/null 2>&1; echo "nowait r$1 rc $?"
  OMNIATTN_BWD_DET_WAIT=0 OMNIATTN_BWD_DET_ROTATE=1 $B --deterministic --out $R/f_det_nowait_rotated_r$1.json \
    >/dev/null 2>&1; echo "nowait rotated r$1 rc $?"
  tar czf $OUT/diag.tgz -C $R .
}
echo "== [$SECONDS s] det"
left 430 && det_round 1
left 440 && det_round 2
python3 bench/gpu/summarize_runs.py $R bwd > $OUT/det.txt 2>&1
cat $OUT/det.txt
echo "== [$SECONDS s] done"
