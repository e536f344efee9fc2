#!/usr/bin/env bash
# One device call (hard limit 10 min): build with all cores, GPU tests, compute-sanitizer on a subset, our benchmark
# (forward; backward and forward+backward), and the peers in the same run (PyTorch SDPA cuDNN / FA2 / efficient,
# FlexAttention, + fp16, GQA, backward-alone peers and peer memory from bench/gpu/). Needs .carry/ (made by
# scripts/make_gpu_carry.sh: sysroot + peers_gpu.py) named in the device call's carry: the GPU machine installs
# nothing.
#
# Steps and estimated wall time on an H100/H200 (16 cores), default settings:
#   build      clean 60-100 s (warm machine, build/gpu kept: seconds)                       cap 240 s
#   tests      ctest -L gpu: 60-120 s (not yet timed with the sm90 tests)                    cap 180 s
#   sanitize   memcheck + racecheck on *Sanitize*: 40-90 s                                    cap 150 s
#   bench      ours, fwd: {sm90, sm80} x D {64,128,256} x N 512..32k x {bf16, fp16} + GQA: ~30 s
#              ours, bwd + fwd+bwd, bf16, auto backend, 10 reps: ~5 s while backward is refused, ~35 s once it runs
#   peers      peers_gpu.py fwd + flex (efficient included, flex compiles 6 times): 80-110 s
#              peer_memory.py (cuDNN, FA2 forward memory, bf16 + fp16): ~25 s
#              peers_extra.py fp16 + GQA forward: ~40 s
#              bwd peers (peers_gpu.py bwd ~65 s, peers_extra.py bwd ~40 s): only when ours has bwd rows
#   merge      fwd.json, bwd.json: seconds
# Total today ~7.5 min; once the CUDA backward runs ~9.5 min: then split into two calls (tests, then bench):
#   GPU_CHECK_STEPS="build tests sanitize" (~4.5 min), then GPU_CHECK_STEPS="build bench peers" (~5.5 min).
# Every step runs under `timeout` within GPU_CHECK_BUDGET (default 540 s from the start), keeping 25 s for the
# merge, so a slow step costs its own results, not the others'.
#
# Knobs (environment):
#   GPU_CHECK_STEPS="build tests sanitize bench peers"   steps to run (default: all)
#   GPU_CHECK_BUDGET=540        seconds for the whole script
#   BENCH_QUICK=1               D 64,128; N 1k,4k,16k; bf16; 10 reps; no flex, no fp16 peers (bench+peers ~1.5 min)
#   BENCH_DIMS, BENCH_LENGTHS, BENCH_DTYPES, BENCH_BACKENDS (sm90,sm80), BENCH_REPS (20)
#   BENCH_BWD=bwd,fwdbwd        ops of the backward run ("" skips it);  BENCH_ARGS: extra flags for our forward run
#   BENCH_BWD_BACKENDS (auto)   backends of the backward run (e.g. sm90,sm80: rows of each)
#   BENCH_BWD_DETERMINISTIC=1   the backward run again with --deterministic (raw.tgz: ours_bwd_deterministic.json)
#   BENCH_FWD=0, PEERS_FWD=0    skip our forward run / the forward peers (a backward-only call)
#   PEERS_BWD=auto|1|0          backward peers: when ours has bwd rows (auto), always, never
#   PEERS_FLEX=1                FlexAttention rows (0: none)
#   SANITIZE_FILTER="*Sanitize*"  gtest filter of the compute-sanitizer subset
#   GPU_SMOKE_FILTER, GPU_SMOKE_TIMEOUT (30)  run these tests first; a failure or hang skips every later step
#   GPU_TEST_TIMEOUT (120)      seconds per test suite process
#   OMNIATTN_COMMIT=<sha>       recorded in the JSON (the device copy may have no .git)
#   decode     omniattn_bench_decode + bench/gpu/peers_decode.py (SDPA cuDNN / flash), merged: ~2.5 min  cap 200 s
#   python     the Python extension's pytest suite on the GPU machine (tests/python, CUDA tests included)  cap 150 s
#   sparse     block-sparse: omniattn_bench_sparse --dump-cases (masks for the peer, seconds), ours (~1 min),
#              bench/gpu/peers_sparse.py (FlexAttention, ~18 compiled graphs, + cuDNN dense: 3-5 min), merged by
#              scripts/merge_sparse.py into sparse.json; SPARSE_QUICK=1: ~2.5 min      caps 30 + 150 + 330 s
# Steps "decode", "python" and "sparse" are not in the default list; name them in GPU_CHECK_STEPS (sparse in full
# mode wants its own call: GPU_CHECK_STEPS="build sparse").
#   DECODE_QUICK=1 (B {1,16} x L {4k,64k}), DECODE_REPS (20); PYTEST_TARGETS (tests/python): what pytest runs
#   SPARSE_QUICK=1 (N 16k, 128-token blocks, 10 reps), SPARSE_LENGTHS (8192,16384,32768), SPARSE_PATTERNS (name
#   prefixes), SPARSE_REPS (20), SPARSE_ARGS (more flags of ours), SPARSE_PEERS=0 (no Flex / cuDNN run)
# Output ($OUT, at most 7 files): gpu_check.log (steps, times, tables), logs.tgz (build.log, tests.log with the
# sanitizers, bench.log, python.log, sparse.log), fwd.json, bwd.json, decode.json, sparse.json (ours + peers,
# results schema; commit them as bench/results/<machine>/, machine from the GPU name), raw.tgz (the unmerged JSON
# of every step).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/build/gpu-out}
mkdir -p "$OUT"
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-540}
STEPS=${GPU_CHECK_STEPS:-"build tests sanitize bench peers"}
SYSROOT=$PWD/.carry/sysroot/usr
export LD_LIBRARY_PATH=$SYSROOT/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
LOGS=build/gpu-logs  # packed into $OUT/logs.tgz at the end (the device returns at most 8 files)
rm -rf "$LOGS" && mkdir -p "$LOGS"
LOG=$OUT/gpu_check.log BUILD_LOG=$LOGS/build.log TEST_LOG=$LOGS/tests.log BENCH_LOG=$LOGS/bench.log
PY_LOG=$LOGS/python.log
BUILD=build/gpu
RAW=build/gpu-raw  # unmerged JSON, packed into $OUT/raw.tgz at the end
rm -rf "$RAW" && mkdir -p "$RAW"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  DIMS=${BENCH_DIMS:-64,128} LENGTHS=${BENCH_LENGTHS:-1024,4096,16384} DTYPES=${BENCH_DTYPES:-bf16}
  REPS=${BENCH_REPS:-10} FLEX=${PEERS_FLEX:-0}
else
  DIMS=${BENCH_DIMS:-64,128,256} LENGTHS=${BENCH_LENGTHS:-512,1024,2048,4096,8192,16384,32768}
  DTYPES=${BENCH_DTYPES:-bf16,fp16} REPS=${BENCH_REPS:-20} FLEX=${PEERS_FLEX:-1}
fi
BACKENDS=${BENCH_BACKENDS:-sm90,sm80}
BWD_OPS=${BENCH_BWD-bwd,fwdbwd}
COMMIT=${OMNIATTN_COMMIT:-$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)}
BENCH=$BUILD/bench/gpu/omniattn_bench_gpu

step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
elapsed() { echo $(($(date +%s) - T0)); }
exec 3>&1  # the call's stdout: step lines reach it even inside redirected commands
say() { echo "== [$(elapsed) s] $*" | tee -a "$LOG" >&3; }
# limited CAP CMD...: runs CMD under timeout: at most CAP seconds and what the budget leaves (25 s kept for the merge).
limited() {
  local cap=$1 left=$((BUDGET - $(elapsed) - 25))
  shift
  ((left < cap)) && cap=$left
  if ((cap < 10)); then say "SKIPPED (budget spent): $*"; return 124; fi
  timeout -k 5 "$cap" "$@"
  local rc=$?
  ((rc == 124 || rc == 137)) && say "TIMED OUT after $cap s: $*"
  return $rc
}
# timed NAME CAP CMD...: a step line with its wall time.
timed() {
  local name=$1 cap=$2 start rc
  shift 2
  start=$(date +%s)
  limited "$cap" "$@"
  rc=$?
  say "$name: $(($(date +%s) - start)) s, rc $rc"
  return $rc
}

GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -1)
GPU_INFO=$(nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version,count --format=csv,noheader -i 0 2>/dev/null | head -1)
say "machine: $GPU_INFO; steps: $STEPS; budget $BUDGET s; quick ${BENCH_QUICK:-0}; commit $COMMIT"
{ nvidia-smi; nvcc --version | tail -2; g++ --version | head -1; nproc; } >>"$LOG" 2>&1

if step build; then
  say "build"
  bash scripts/gpu_configure.sh . $BUILD "$SYSROOT" >>"$BUILD_LOG" 2>&1 ||
    { say "configure FAILED"; tail -30 "$BUILD_LOG"; exit 1; }
  grep -E "omniattn: Python" "$BUILD_LOG" | tail -1 | tee -a "$LOG"
  timed "build" 240 cmake --build $BUILD -j "$(nproc)" >>"$BUILD_LOG" 2>&1 ||
    { say "build FAILED"; grep -E "error|Error" "$BUILD_LOG" | head -40 | tee -a "$LOG"; exit 1; }
fi

status=0
if [ -n "${GPU_SMOKE_FILTER:-}" ] && step tests; then  # a hang or failure here skips every later step
  say "smoke test: $GPU_SMOKE_FILTER"
  if ! limited "${GPU_SMOKE_TIMEOUT:-30}" $BUILD/tests/omniattn_gpu_tests --gtest_filter="$GPU_SMOKE_FILTER" \
      --gtest_brief=1 >>"$TEST_LOG" 2>&1; then
    say "SMOKE TEST FAILED: later steps skipped"; tail -20 "$TEST_LOG" | tee -a "$LOG"; STEPS="" status=1
  fi
fi
if step tests; then
  say "gpu tests"
  # One process per test suite (GPU_TEST_FILTER narrows them): a crash costs its suite, not the whole run.
  GT=$BUILD/tests/omniattn_gpu_tests
  # "Suite.a:Suite.b" per line: the tests of each suite that GPU_TEST_FILTER selects.
  per_suite=$($GT --gtest_list_tests --gtest_filter="${GPU_TEST_FILTER:-*}" |
    awk '/^[^ ]/ {if (f) print f; s=$1; f=""; next} {sub(/^ +/, ""); sub(/ .*/, ""); f=f (f ? ":" : "") s $0} END {if (f) print f}')
  failed_suites=""
  for filter in $per_suite; do
    limited "${GPU_TEST_TIMEOUT:-120}" $GT --gtest_filter="$filter" --gtest_brief=1 >>"$TEST_LOG" 2>&1 ||
      failed_suites+=" ${filter%%.*}"
  done
  if [ -n "$failed_suites" ]; then status=1; say "GPU TESTS FAILED in:$failed_suites"; else say "every GPU test suite passed"; fi
  grep -E "^\[  FAILED|PASSED|Failure|rc [0-9]" "$TEST_LOG" | tail -25 | tee -a "$LOG"
  say "gpu tests done"
fi

if step sanitize; then
  filter=${SANITIZE_FILTER:-"*Sanitize*"}
  for tool in memcheck racecheck; do
    echo "===== compute-sanitizer --tool $tool, filter $filter" >>"$TEST_LOG"
    if timed "compute-sanitizer $tool" 75 compute-sanitizer --tool $tool --error-exitcode 9 \
      $BUILD/tests/omniattn_gpu_tests --gtest_filter="$filter" >>"$TEST_LOG" 2>&1; then
      say "$tool clean"
    else
      status=1
      say "$tool FOUND ERRORS (or timed out): see tests.log"
    fi
  done
fi

if step bench; then
  say "ours: forward ($BACKENDS; D $DIMS; N $LENGTHS; $DTYPES)"
  # shellcheck disable=SC2086  # BENCH_ARGS: several flags
  if [ "${BENCH_FWD:-1}" = 1 ]; then
    timed "ours fwd" 150 $BENCH --backend "$BACKENDS" --ops fwd --dims "$DIMS" --lengths "$LENGTHS" \
      --dtypes "$DTYPES" --reps "$REPS" --commit "$COMMIT" --out "$RAW/ours_fwd.json" ${BENCH_ARGS:-} >>"$BENCH_LOG" 2>&1
    grep -E "^(skip|omniattn_bench_gpu|kernel)" "$BENCH_LOG" | grep -v "same reason" | tail -20 | tee -a "$LOG"
  fi
  if [ -n "$BWD_OPS" ]; then
    say "ours: backward ($BWD_OPS, bf16, backend ${BENCH_BWD_BACKENDS:-auto})"
    timed "ours bwd" 120 $BENCH --backend "${BENCH_BWD_BACKENDS:-auto}" --ops "$BWD_OPS" --dims "$DIMS" --lengths "$LENGTHS" --dtypes bf16 \
      --no-gqa --reps 10 --commit "$COMMIT" --out "$RAW/ours_bwd.json" >>"$BENCH_LOG" 2>&1
    grep -E "^skip" "$BENCH_LOG" | grep -E " (bwd|fwd\+bwd):" | grep -v "same reason" | tail -5 | tee -a "$LOG"
    if [ "${BENCH_BWD_DETERMINISTIC:-0}" = 1 ]; then  # the same rows in deterministic mode (raw JSON only)
      say "ours: backward, deterministic mode"
      timed "ours bwd deterministic" 120 $BENCH --backend "${BENCH_BWD_BACKENDS:-auto}" --ops "$BWD_OPS" --dims "$DIMS" \
        --lengths "$LENGTHS" --dtypes bf16 --no-gqa --reps 10 --deterministic --commit "$COMMIT" \
        --out "$RAW/ours_bwd_deterministic.json" >>"$BENCH_LOG" 2>&1
    fi
  fi
fi

if step peers; then
  peer_dims_lengths=(--dims "$DIMS" --lengths "$LENGTHS")
  if [ "${PEERS_FWD:-1}" = 1 ]; then
    say "peers: forward (peers_gpu.py fwd$([ "$FLEX" = 1 ] && echo ' + flex'))"
    timed "peers fwd" 150 python3 .carry/peers_gpu.py --suite "fwd$([ "$FLEX" = 1 ] && echo ,flex)" \
      "${peer_dims_lengths[@]}" --out "$RAW/peers_fwd.json" >>"$BENCH_LOG" 2>&1
    say "peers: forward memory (peer_memory.py)"
    timed "peer memory" 60 python3 bench/gpu/peer_memory.py "${peer_dims_lengths[@]}" --dtypes "$DTYPES" \
      --out "$RAW/peer_memory.json" >>"$BENCH_LOG" 2>&1
    extra=gqa
    case ",$DTYPES," in *,fp16,*) extra=fp16,gqa ;; esac
    say "peers: $extra forward (peers_extra.py)"
    timed "peers extra fwd" 90 python3 bench/gpu/peers_extra.py --suite $extra "${peer_dims_lengths[@]}" \
      --dtypes bf16 --out "$RAW/peers_extra_fwd.json" >>"$BENCH_LOG" 2>&1
  fi
  ours_bwd_rows=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['rows']))" \
    "$RAW/ours_bwd.json" 2>/dev/null || echo 0)
  if [ "${PEERS_BWD:-auto}" = 1 ] || { [ "${PEERS_BWD:-auto}" = auto ] && [ "$ours_bwd_rows" -gt 0 ]; }; then
    say "peers: backward (peers_gpu.py bwd = fwd+bwd; peers_extra.py bwd alone)"
    timed "peers fwd+bwd" 120 python3 .carry/peers_gpu.py --suite bwd "${peer_dims_lengths[@]}" \
      --out "$RAW/peers_bwd.json" >>"$BENCH_LOG" 2>&1
    timed "peers bwd" 90 python3 bench/gpu/peers_extra.py --suite bwd "${peer_dims_lengths[@]}" --dtypes bf16 \
      --out "$RAW/peers_extra_bwd.json" >>"$BENCH_LOG" 2>&1
  else
    say "peers: backward skipped (ours has $ours_bwd_rows bwd rows; PEERS_BWD=1 forces it)"
  fi
fi

if step decode; then
  dq=(); [ "${DECODE_QUICK:-0}" = 1 ] && dq=(--quick)
  say "decode: ours (omniattn_bench_decode) and SDPA peers (peers_decode.py)"
  timed "ours decode" 90 $BUILD/bench/gpu/omniattn_bench_decode --reps "${DECODE_REPS:-20}" "${dq[@]}" \
    --commit "$COMMIT" --out "$RAW/ours_decode.json" >>"$BENCH_LOG" 2>&1
  timed "peers decode" 100 python3 bench/gpu/peers_decode.py --reps "${DECODE_REPS:-20}" "${dq[@]}" \
    --out "$RAW/peers_decode.json" >>"$BENCH_LOG" 2>&1
  python3 scripts/merge_decode.py "$RAW/ours_decode.json" "$RAW/peers_decode.json" --out "$OUT/decode.json" \
    --commit "$COMMIT" --gpu-name "$GPU_NAME" 2>&1 | tee -a "$LOG"
fi

if step python; then
  say "python: pytest tests/python on this GPU"
  if ls $BUILD/python/omniattn/_C*.so >/dev/null 2>&1; then
    export PYTHONPATH=$PWD/$BUILD/python
    # shellcheck disable=SC2086  # PYTEST_TARGETS: several paths
    timed "pytest" 150 python3 -m pytest -q -p no:cacheprovider ${PYTEST_TARGETS:-tests/python} >>"$PY_LOG" 2>&1 ||
      { status=1; say "PYTHON TESTS FAILED"; }
    tail -15 "$PY_LOG" | tee -a "$LOG"
  else
    status=1
    say "python: the extension was not built (see the 'omniattn: Python' line above)"
  fi
fi

if step sparse; then
  SPARSE_LOG=$LOGS/sparse.log
  sparse_bin=$BUILD/bench/gpu/omniattn_bench_sparse
  sparse_cases=()  # the same case flags for the dump (the peer's masks) and our run
  [ "${SPARSE_QUICK:-0}" = 1 ] && sparse_cases+=(--quick)
  [ -n "${SPARSE_LENGTHS:-}" ] && sparse_cases+=(--lengths "$SPARSE_LENGTHS")
  [ -n "${SPARSE_PATTERNS:-}" ] && sparse_cases+=(--patterns "$SPARSE_PATTERNS")
  say "sparse: cases, ours (omniattn_bench_sparse), peers (peers_sparse.py: FlexAttention, cuDNN)"
  timed "sparse cases" 30 $sparse_bin "${sparse_cases[@]}" --dump-cases "$RAW/sparse_cases.json" >>"$SPARSE_LOG" 2>&1
  # shellcheck disable=SC2086  # SPARSE_ARGS: several flags
  timed "ours sparse" 150 $sparse_bin "${sparse_cases[@]}" ${SPARSE_REPS:+--reps "$SPARSE_REPS"} --commit "$COMMIT" \
    --out "$RAW/ours_sparse.json" ${SPARSE_ARGS:-} >>"$SPARSE_LOG" 2>&1
  grep -E "^skip" "$SPARSE_LOG" | sed -E 's/^skip +[^ ]+ +[^ ]+ +//' | cut -c1-160 | sort | uniq -c | head -6 | tee -a "$LOG"
  if [ "${SPARSE_PEERS:-1}" = 1 ]; then
    peer_budget=$((BUDGET - $(elapsed) - 60))
    ((peer_budget > 300)) && peer_budget=300
    timed "peers sparse" 330 python3 bench/gpu/peers_sparse.py --cases "$RAW/sparse_cases.json" --budget "$peer_budget" \
      --out "$RAW/peers_sparse.json" >>"$SPARSE_LOG" 2>&1
  fi
  python3 scripts/merge_sparse.py "$RAW/ours_sparse.json" "$RAW/peers_sparse.json" --out "$OUT/sparse.json" \
    --commit "$COMMIT" --gpu-name "$GPU_NAME" 2>&1 | tee -a "$LOG"
  tar czf "$OUT/raw.tgz" -C "$RAW" . 2>/dev/null
fi

if step bench || step peers; then
  command="GPU_CHECK_STEPS='$STEPS' BENCH_QUICK=${BENCH_QUICK:-0} BENCH_DIMS=$DIMS BENCH_LENGTHS=$LENGTHS"
  command+=" BENCH_DTYPES=$DTYPES BENCH_BACKENDS=$BACKENDS bash scripts/gpu_check.sh (ours: bench/gpu; peers:"
  command+=" ../shared/peers/peers_gpu.py + bench/gpu/peers_extra.py + bench/gpu/peer_memory.py, same call)"
  say "merge: forward"
  python3 scripts/merge_results.py "$RAW"/ours_fwd.json "$RAW"/peers_fwd.json "$RAW"/peers_extra_fwd.json \
    "$RAW"/peer_memory.json --ops fwd --out "$OUT/fwd.json" --gpu-name "$GPU_NAME" --gpu-info "$GPU_INFO" \
    --command "$command" 2>&1 | tee -a "$LOG"
  say "merge: backward"
  python3 scripts/merge_results.py "$RAW"/ours_bwd.json "$RAW"/peers_bwd.json "$RAW"/peers_extra_bwd.json \
    --ops bwd,fwd+bwd --out "$OUT/bwd.json" --gpu-name "$GPU_NAME" --gpu-info "$GPU_INFO" \
    --command "$command" 2>&1 | tee -a "$LOG"
  tar czf "$OUT/raw.tgz" -C "$RAW" . 2>/dev/null
fi
tar czf "$OUT/logs.tgz" -C "$LOGS" . 2>/dev/null
say "done (status $status)"
exit $status
