#!/usr/bin/env bash
# One device call (~6-7 min) that measures what session 8 built but could not run (no device was left):
#   tests     Sm90Backward.{LaunchOrdersAgree, GridMasks, DeterministicIsBitwiseRepeatable, BlockMasks}, SparseForward*,
#             SparseBackward*, Decode*; racecheck + memcheck on Sm90BackwardSanitize / SparseBackwardSanitize
#   A/B 1     deterministic sm90 backward: OMNIATTN_BWD_DET_OVERLAP=0 (serial writer) vs 1, against the default mode
#   A/B 2     block-sparse backward launch order: OMNIATTN_BWD_SPARSE_CHUNK=0 (a head at a time) vs 1 (tile-major),
#             sinks + window, window, causal block mask, NATTEN 2-D, N = 16k (ours only)
#   decode    the decode benchmark with the vectorized page-id validation (host us of paged 16 at B = 64)
#   lookahead session 9: the decode tile stream A/B (OMNIATTN_DECODE_ITEM_LOOKAHEAD=0/1, lookahead.txt)
#   hnd       session 9: the decode benchmark's large-batch and ragged rows on head-major (HND) pools, the peers'
#             [B, Hkv, L, D] layout (hnd.txt, hnd_*.json)
# Usage (here): bash scripts/make_gpu_carry.sh; git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_session9.sh
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
D=build/gpu/bench/gpu/omniattn_bench_decode
left() { [ $SECONDS -lt ${1:-540} ]; }  # seconds since the call began: skip what would not finish
quiet() { grep -v "^measured\|^KV\|^layout"; }
ab_round() {
  local r=$1
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
}
lookahead_round() {  # the decode tile stream: an item's first tiles copied while the previous item computes (1) or not
  for la in 0 1; do
    for c in contiguous:ragged paged16:ragged contiguous:64:4096 contiguous:1:16384; do
      echo "item lookahead $la:"; OMNIATTN_DECODE_ITEM_LOOKAHEAD=$la timeout 30 $D --only $c --reps 30 \
        --out $AB/lookahead${la}_r$1_${c//:/_}.json 2>&1 | quiet
    done
  done
  tar czf $OUT/ab.tgz -C $AB .
}
hnd_round() {  # token-major (vLLM NHD) against head-major (HND, the peers' [B, Hkv, L, D]) pools; stream-K rows
  for lay in nhd hnd; do
    for c in contiguous:16:65536 contiguous:64:4096 contiguous:ragged paged16:64:16384; do
      cl=${c/contiguous/contiguous$([ $lay = hnd ] && echo _hnd)}; cl=${cl/paged16/paged16$([ $lay = hnd ] && echo _hnd)}
      timeout 30 $D --kv-layout $lay --only $cl --reps 20 --out $AB/hnd_${lay}_${c//:/_}.json 2>&1 | quiet
    done
    cl=contiguous$([ $lay = hnd ] && echo _hnd):64:4096
    echo "schedule streamk:"; timeout 30 $D --kv-layout $lay --only $cl --reps 20 --schedule streamk \
      --out $AB/hnd_${lay}_streamk_64_4096.json 2>&1 | quiet
  done
  tar czf $OUT/ab.tgz -C $AB .
}
left 500 && ab_round 1
left 520 && lookahead_round 1 | tee $OUT/lookahead.txt
left 500 && hnd_round | tee $OUT/hnd.txt
left 470 && ab_round 2
left 540 && lookahead_round 2 | tee -a $OUT/lookahead.txt
{ python3 bench/gpu/summarize_runs.py $AB bwd; python3 bench/gpu/summarize_runs.py $AB "fwd+bwd"; } > $OUT/ab.txt 2>&1
cat $OUT/ab.txt
