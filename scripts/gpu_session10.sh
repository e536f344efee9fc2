#!/usr/bin/env bash
# One device call (~8 min at most, session 10's first): where the decode kernel loses bandwidth, the decode bulk-copy
# A/B, the block-sparse backward's row-range bits A/B, and what the deterministic backward's turn waits cost.
#   tests     Decode* (with DecodeGpu.BulkCopies) and SparseBackward*, then Decode* again with OMNIATTN_DECODE_BULK=1
#             for every test; memcheck + racecheck on DecodeGpu.SanitizeSmall (both load modes)
#   ranges    OMNIATTN_BWD_RANGE_BITS=0/1 (partial blocks through ElementMask::visible per element / per-row key
#             ranges): sparse bench, window, sinks + window, causal block mask at 16k, two rounds
#   bulk      OMNIATTN_DECODE_BULK=0/1 (16-byte cp.async chunks / one bulk copy per K/V row on mbarriers), two rounds
#   order     page order of paged caches: shuffled / shuffled within 2 MB / sequential (address translation vs DRAM)
#   det       dense sm_90a backward, D = 64 / 128, 4k / 16k: default, deterministic, deterministic with
#             OMNIATTN_BWD_DET_WAIT=0 (every step but the wait for the turn), two rounds
#   ncu       the decode kernel on contiguous and paged 16 caches at B = 16, L = 64k, both load modes
# Usage (here): bash scripts/make_gpu_carry.sh; git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_session10.sh
# Output under $OUT: gpu_check.log, logs.tgz, bulk.txt, ranges.txt, det.txt, order.txt, ncu.txt, diag.tgz (JSON, ncu)
# LEAN=1 (~4 min, for a short budget): only DecodeGpu.BulkCopies / SanitizeSmall and SparseBackward.Generators,
# memcheck, one bulk round and one range-bits round.
set -uo pipefail
LEAN=${LEAN:-0}
export GPU_CHECK_STEPS="build tests sanitize" GPU_CHECK_BUDGET=240
export GPU_TEST_FILTER='Decode*:SparseBackward*' GPU_TEST_TIMEOUT=80 SANITIZE_FILTER='DecodeGpu.SanitizeSmall'
[ "$LEAN" = 1 ] && export GPU_TEST_FILTER='DecodeGpu.BulkCopies:DecodeGpu.SanitizeSmall:SparseBackward.Generators' \
  GPU_CHECK_BUDGET=170
export GPU_SMOKE_FILTER='DecodeGpu.BulkCopies' GPU_SMOKE_TIMEOUT=60
bash scripts/gpu_check_snapshot.sh
cd /tmp/w || exit 1
D=build/gpu/bench/gpu/omniattn_bench_decode S=build/gpu/bench/gpu/omniattn_bench_sparse R=/tmp/diag
rm -rf $R && mkdir -p $R
left() { [ $SECONDS -lt ${1:-420} ]; }  # seconds since the call began: skip what would not finish
quiet() { grep -v "^measured\|^KV\|^layout"; }
if [ "$LEAN" != 1 ]; then
  echo "== [$SECONDS s] Decode* with OMNIATTN_DECODE_BULK=1"
  OMNIATTN_DECODE_BULK=1 timeout 120 build/gpu/tests/omniattn_gpu_tests --gtest_filter='Decode*' 2>&1 |
    grep -E "^\[  (PASSED|FAILED)|Failure|error" | head -20
fi
echo "== [$SECONDS s] SparseBackward* with OMNIATTN_BWD_RANGE_BITS=1"
OMNIATTN_BWD_RANGE_BITS=1 timeout 150 build/gpu/tests/omniattn_gpu_tests \
  --gtest_filter="$([ "$LEAN" = 1 ] && echo 'SparseBackward.Generators' || echo 'SparseBackward*')" 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|Failure|error" | head -20
bulk_round() {
  for b in 0 1; do
    for c in contiguous:16:65536 contiguous:64:4096 contiguous:ragged paged16:16:65536 paged256:16:65536 contiguous:1:16384; do
      echo "bulk $b:"; OMNIATTN_DECODE_BULK=$b timeout 30 $D --only $c --reps 20 --out $R/bulk${b}_r$1_${c//:/_}.json 2>&1 | quiet
    done
  done
  tar czf $OUT/diag.tgz -C $R .
}
ranges_round() {
  for b in 0 1; do
    OMNIATTN_BWD_RANGE_BITS=$b timeout 60 $S --lengths 16384 --patterns window,sinks,causal --reps 10 \
      --out $R/ranges${b}_r$1.json >/dev/null 2>&1; echo "ranges $b r$1 rc $?"
  done
  # the dense backward (same binary as call 1's bwd_default rows; the range path added spill code to the kernel)
  [ "$1" = 1 ] && timeout 40 build/gpu/bench/gpu/omniattn_bench_gpu --backend sm90 --ops bwd --dims 64,128 \
    --lengths 4096,16384 --dtypes bf16 --no-gqa --reps 10 --out $R/bwd_dense.json >/dev/null 2>&1
  tar czf $OUT/diag.tgz -C $R .
}
order_round() {
  for order in shuffled local sequential; do
    for c in paged16:16:65536 paged16:1:65536; do
      cl=${c/paged16/paged16$([ $order != shuffled ] && echo _$order)}
      echo "order $order:"; timeout 30 $D --page-order $order --only $cl --reps 20 --out $R/order_${order}_${c//:/_}.json 2>&1 | quiet
    done
  done
  tar czf $OUT/diag.tgz -C $R .
}
det_round() {  # causal and not, bf16
  local B="timeout 60 build/gpu/bench/gpu/omniattn_bench_gpu --backend sm90 --ops bwd --dims 64,128 --lengths 4096,16384 \
    --dtypes bf16 --no-gqa --reps 10"
  $B --out $R/det_default_r$1.json >/dev/null 2>&1; echo "det default r$1 rc $?"
  $B --deterministic --out $R/det_wait_r$1.json >/dev/null 2>&1; echo "det wait r$1 rc $?"
  OMNIATTN_BWD_DET_WAIT=0 $B --deterministic --out $R/det_nowait_r$1.json >/dev/null 2>&1; echo "det nowait r$1 rc $?"
  tar czf $OUT/diag.tgz -C $R .
}
ncu_round() {
  local NCU="ncu --kernel-name regex:decode_kernel --launch-skip 5 --launch-count 1 --section SpeedOfLight \
    --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy"
  for b in 0 1; do
    for c in contiguous:16:65536 paged16:16:65536; do
      OMNIATTN_DECODE_BULK=$b timeout 60 $NCU $D --only $c --reps 2 > $R/ncu_bulk${b}_${c//:/_}.txt 2>&1
      echo "== ncu bulk $b $c rc $?"
      grep -E "DRAM Throughput|L2 Cache Throughput|Duration|Mem Busy|Max Bandwidth|L2 Hit|Stall|Warp Cycles Per Issued|Issued Warp|Achieved Occupancy|Registers Per" $R/ncu_bulk${b}_${c//:/_}.txt | head -24
    done
  done
  tar czf $OUT/diag.tgz -C $R .
}
if [ "$LEAN" = 1 ]; then
  left 200 && bulk_round 1 | tee $OUT/bulk.txt
  left 250 && ranges_round 1 | tee $OUT/ranges.txt
  left 240 && order_round | tee $OUT/order.txt
  left 270 && det_round 1 | tee $OUT/det.txt
  python3 bench/gpu/summarize_runs.py $R bwd | tee $OUT/ranges_table.txt
  exit 0
fi
left 330 && bulk_round 1 | tee $OUT/bulk.txt
left 360 && ranges_round 1 | tee $OUT/ranges.txt
left 380 && order_round | tee $OUT/order.txt
left 330 && det_round 1 | tee $OUT/det.txt
left 360 && ncu_round | tee $OUT/ncu.txt
left 380 && ranges_round 2 | tee -a $OUT/ranges.txt
left 370 && bulk_round 2 | tee -a $OUT/bulk.txt
left 450 && det_round 2 | tee -a $OUT/det.txt
{ python3 bench/gpu/summarize_runs.py $R bwd; python3 bench/gpu/summarize_runs.py $R "fwd+bwd"; } > $OUT/ranges_table.txt 2>&1
cat $OUT/ranges_table.txt
echo "== [$SECONDS s] done"
