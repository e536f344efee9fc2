#!/usr/bin/env bash
# One device call (~4 min): where paged decode loses bandwidth. Page order (shuffled / shuffled within 2 MB /
# sequential) of paged 16 and 256 caches, and ncu of the decode kernel on paged 16 (shuffled, sequential) and a
# contiguous cache at B = 16, L = 64k.
# Usage (here): bash scripts/make_gpu_carry.sh; git archive --format=tar.gz -o .carry/lead.tgz HEAD
#        (device, carry [".carry"]): OMNIATTN_COMMIT=<sha> bash scripts/gpu_decode_diag.sh
# Output under $OUT: gpu_check.log, order.txt, order_*.json, ncu_*.txt
set -uo pipefail
export GPU_CHECK_STEPS="build"
bash scripts/gpu_check_snapshot.sh
cd /tmp/w || exit 1
D=build/gpu/bench/gpu/omniattn_bench_decode
quiet() { grep -v "^measured\|^KV\|^layout"; }
for order in shuffled local sequential; do
  for c in paged16:16:65536 paged16:1:65536 paged16:64:16384 paged256:16:65536; do
    cl=${c/paged16/paged16$([ $order != shuffled ] && echo _$order)}; cl=${cl/paged256/paged256$([ $order != shuffled ] && echo _$order)}
    timeout 40 $D --page-order $order --only $cl --reps 20 --out $OUT/order_${order}_${c//:/_}.json 2>&1 | quiet
  done
done | tee $OUT/order.txt
timeout 30 $D --only contiguous:16:65536 --reps 5 2>&1 | quiet | tee -a $OUT/order.txt
NCU="ncu --kernel-name regex:decode_kernel --launch-skip 5 --launch-count 1 --section SpeedOfLight \
  --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section WarpStateStats --section SchedulerStats \
  --section Occupancy --section LaunchStats"
for c in contiguous:16:65536 paged16:16:65536 paged16_sequential:16:65536; do
  order=shuffled; [[ $c == *sequential* ]] && order=sequential
  timeout 90 $NCU $D --page-order $order --only $c --reps 2 > $OUT/ncu_${c//:/_}.txt 2>&1
  echo "ncu $c rc $?"
  grep -E "DRAM Throughput|L2 Cache Throughput|Duration|Memory Throughput|L1/TEX Hit|L2 Hit|Stall|Warp Cycles Per Issued|Achieved Occupancy|Registers" $OUT/ncu_${c//:/_}.txt | head -30
done
