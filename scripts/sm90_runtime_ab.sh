#!/usr/bin/env bash
# Same-binary A/B runs of the sm_90a forward's run-time choices, after a gpu-check in the same device call
# (docs/kernels.md, optimization log steps 8-10):
#   here:    git archive --format=tar.gz -o .carry/lead.tgz HEAD; write .carry/ab.txt, one run a line:
#            name|OMNIATTN_SM90_SCHEDULE (persistent, per_tile)|OMNIATTN_SM90_L2_MB (-1: table)|OMNIATTN_SM90_O_STORE
#            (tma, registers)|bench flags (e.g. --dims 64 --lengths 512,1024 --no-gqa)
#   device:  GPU_CHECK_STEPS=... bash scripts/sm90_runtime_ab.sh   (carry [".carry"]; gpu_check.sh knobs apply)
# Writes $OUT/results.tgz (ours_<name>.json + logs, and the peers' JSON when the gpu-check ran them) and prints a table
# (bench/gpu/summarize_runs.py: TFLOP/s per (D, mask, MHA/GQA, N), one column per run).
ROOT=$PWD
bash scripts/gpu_check_snapshot.sh
cd /tmp/w || exit 1
R=/tmp/ab && rm -rf $R && mkdir -p $R
B=build/gpu/bench/gpu/omniattn_bench_gpu
while IFS='|' read -r name schedule l2 ostore flags; do
  case "$name" in "" | "#"*) continue ;; esac
  # shellcheck disable=SC2086  # flags: several words
  OMNIATTN_SM90_SCHEDULE=$schedule OMNIATTN_SM90_L2_MB=$l2 OMNIATTN_SM90_O_STORE=$ostore timeout 60 $B --backend sm90 \
    --ops fwd --dtypes bf16 --reps 10 --commit "${OMNIATTN_COMMIT:-unknown}" $flags --out "$R/ours_$name.json" \
    > "$R/bench_$name.log" 2>&1
  echo "$name: rc $?"
done < "${AB:-$ROOT/.carry/ab.txt}"
cp build/gpu-raw/peers_fwd.json "$R/" 2>/dev/null
tar czf "$OUT/results.tgz" -C $R .
python3 bench/gpu/summarize_runs.py $R
