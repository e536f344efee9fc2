#!/usr/bin/env bash
# One short device call (~2.5 min, session 10's fourth): which per-step work of the deterministic sm_90a dQ writer
# costs ~27% at D = 128. Calls 2-3 ruled out the wait for the turn, the completion wait, the sweep order and the
# launch chunk. With OMNIATTN_BWD_DET_WAIT=0, OMNIATTN_BWD_DET_SKIP leaves out (BwdParams::det_skip): 1 dq_turn,
# 2 the __threadfence, 4 the release store, 8 the async-proxy fences; two rounds of default | det | nowait |
# nowait skip 1 | 2 | 4 | 8 | 15.
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
echo "== [$SECONDS s] done"
