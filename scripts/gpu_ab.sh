#!/usr/bin/env bash
# Same-binary A/B runs on the device, after a build (and whatever else GPU_CHECK_STEPS names) in the same call: the
# runs of a run file, one a line, repeated ROUNDS times in interleaved order (so drift hits every variant alike).
#   here:    git archive --format=tar.gz -o .carry/lead.tgz HEAD; write the run file (e.g. .carry/ab.txt), lines
#              name|VAR=value VAR=value|binary and flags
#            the binary is one of build/gpu/bench/gpu/ (omniattn_bench_gpu, omniattn_bench_decode,
#            omniattn_bench_sparse); each run gets --out <its JSON>. Example (the deterministic backward, session 10):
#              default||omniattn_bench_gpu --backend sm90 --ops bwd --dims 64,128 --lengths 4096,16384 --no-gqa --dtypes bf16 --reps 10
#              det||omniattn_bench_gpu --backend sm90 --ops bwd --dims 64,128 --lengths 4096,16384 --no-gqa --dtypes bf16 --reps 10 --deterministic
#   device:  OMNIATTN_COMMIT=<sha> AB=.carry/ab.txt bash scripts/gpu_ab.sh   (carry [".carry"])
#   knobs:   GPU_CHECK_STEPS ("build"), ROUNDS (2), AB_SUMMARY (the op summarized: fwd, bwd, fwd+bwd; default bwd),
#            AB_TESTS (a gtest filter run after the rounds), AB_TIMEOUT (60 s a run)
#            BASE=.carry/base.tgz (git archive of a baseline commit): built beside the lead (bench targets only, in
#            /tmp/base, while the lead builds); a line's binary written base:<name> runs the baseline's build, so
#            that a compile-time change is compared in the same call on the same GPU
# Writes $OUT/ab.tgz (<name>_r<round>.json and logs) and $OUT/ab.txt (bench/gpu/summarize_runs.py: TFLOP/s per shape,
# one column per run and round).
set -uo pipefail
ROOT=$PWD
RUNS=${AB:-$ROOT/.carry/ab.txt}
[ -f "$RUNS" ] || { echo "gpu_ab.sh: no run file $RUNS"; exit 2; }
export GPU_CHECK_STEPS=${GPU_CHECK_STEPS:-build}
if [ -n "${BASE:-}" ]; then  # the baseline's build, beside the lead's (its log: /tmp/base_build.log)
  rm -rf /tmp/base && mkdir -p /tmp/base && tar xzf "$BASE" -C /tmp/base && ln -s "$ROOT/.carry" /tmp/base/.carry
  (bash scripts/gpu_configure.sh /tmp/base /tmp/base/build/gpu "$ROOT/.carry/sysroot/usr" &&
   cmake --build /tmp/base/build/gpu -j "$(nproc)" --target omniattn_bench_gpu omniattn_bench_sparse) > /tmp/base_build.log 2>&1 &
  base_pid=$!
fi
bash scripts/gpu_check_snapshot.sh
if [ -n "${BASE:-}" ]; then
  wait $base_pid
  echo "[$SECONDS s] baseline build: rc $?"
  grep -E "error|FAILED" /tmp/base_build.log | head -20
fi
cd /tmp/w || exit 1
R=/tmp/ab && rm -rf $R && mkdir -p $R
for ((round = 1; round <= ${ROUNDS:-2}; ++round)); do
  while IFS='|' read -r name vars command; do
    case "$name" in "" | "#"*) continue ;; esac
    read -r binary flags <<< "$command"
    tree=/tmp/w commit=${OMNIATTN_COMMIT:-unknown}
    case "$binary" in base:*) tree=/tmp/base commit=${BASE_COMMIT:-base} binary=${binary#base:} ;; esac
    # shellcheck disable=SC2086  # vars and flags: several words each
    env $vars timeout "${AB_TIMEOUT:-60}" "$tree/build/gpu/bench/gpu/$binary" $flags --commit "$commit" \
      --out "$R/${name}_r$round.json" > "$R/${name}_r$round.log" 2>&1
    echo "[$SECONDS s] $name r$round: rc $?"
  done < "$RUNS"
  tar czf "$OUT/ab.tgz" -C $R .
done
python3 bench/gpu/summarize_runs.py $R "${AB_SUMMARY:-bwd}" | tee "$OUT/ab.txt"
if [ -n "${AB_TESTS:-}" ]; then
  timeout 150 build/gpu/tests/omniattn_gpu_tests --gtest_filter="$AB_TESTS" 2>&1 |
    grep -E "^\[  (PASSED|FAILED)|OK \]|Failure" | tee -a "$OUT/ab.txt"
fi
echo "[$SECONDS s] done"
