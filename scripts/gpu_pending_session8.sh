#!/usr/bin/env bash
# One device call (~6-7 min) that measures what session 8 built but could not run (no device was left):
#   tests     Sm90Backward.{LaunchOrdersAgree, GridMasks, DeterministicIsBitwiseRepeatable, BlockMasks}, SparseForward*,
#             SparseBackward*, Decode*; racecheck + memcheck on Sm90BackwardSanitize / SparseBackwardSanitize
#   A/B 1     deterministic sm90 backward: OMNIATTN_BWD_DET_OVERLAP=0 (serial writer) vs 1, against the default mode
#   A/B 2     block-sparse backward launch order: OMNIATTN_BWD_SPARSE_CHUNK=0 (a head at a time) vs 1 (tile-major),
#             sinks + window, window, causal block mask, NATTEN 2-D, N = 16k (ours only)
#   decode    the decode benchmark with the vectorized page-id validation (host us of paged 16 at B = 64)
# Usage (here): bash scripts/make_gpu_carry.sh; git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_pending_session8.sh
# Output under $OUT: gpu_check.log, logs.tgz, decode.json, raw.tgz, ab.tgz (the A/B JSON), ab.txt (their tables).
set -uo pipefail
export GPU_CHECK_STEPS="build tests sanitize decode" GPU_CHECK_BUDGET=330
export GPU_TEST_FILTER='Sm90Backward.LaunchOrdersAgree:Sm90Backward.GridMasks:SparseForward*:Sm90Backward.DeterministicIsBitwiseRepeatable:Sm90Backward.BlockMasks:SparseBackward*:Decode*'
export GPU_TEST_TIMEOUT=100 SANITIZE_FILTER='Sm90BackwardSanitize*:SparseBackwardSanitize*'
export GPU_SMOKE_FILTER='Sm90Backward.LaunchOrdersAgree' GPU_SMOKE_TIMEOUT=120  # a hang in the new writer order stops here
bash scripts/gpu_check_snapshot.sh
cd /tmp/w || exit 1
B=build/gpu/bench/gpu/omniattn_bench_gpu S=build/gpu/bench/gpu/omniattn_bench_sparse
AB=/tmp/ab && rm -rf $AB && mkdir -p $AB
for r in 1 2; do
  timeout 40 $B --backend sm90 --ops bwd --dims 64,128 --lengths 4096,16384 --dtypes bf16 --no-gqa --reps 10 \
    --out $AB/bwd_default_r$r.json >/dev/null 2>&1; echo "bwd default r$r rc $?"
  for o in 0 1; do
    OMNIATTN_BWD_DET_OVERLAP=$o timeout 50 $B --backend sm90 --ops bwd --dims 64,128 --lengths 4096,16384 --dtypes bf16 \
      --no-gqa --reps 10 --deterministic --out $AB/bwd_det_overlap${o}_r$r.json >/dev/null 2>&1; echo "bwd det overlap $o r$r rc $?"
  done
  for c in 0 1; do
    OMNIATTN_BWD_SPARSE_CHUNK=$c timeout 60 $S --lengths 16384 --patterns sinks,window,causal,natten2d --reps 10 \
      --out $AB/sparse_chunk${c}_r$r.json >/dev/null 2>&1; echo "sparse chunk $c r$r rc $?"
  done
  tar czf $OUT/ab.tgz -C $AB .
done
{ python3 bench/gpu/summarize_runs.py $AB bwd; python3 bench/gpu/summarize_runs.py $AB "fwd+bwd"; } > $OUT/ab.txt 2>&1
cat $OUT/ab.txt
