#!/usr/bin/env bash
# Decode (issue 7) in one device call, within 5 minutes: build with all cores, the decode GPU tests
# (omniattn_gpu_tests --gtest_filter='*Decode*'), compute-sanitizer memcheck on DecodeGpu.SanitizeSmall, our decode
# benchmark and the PyTorch SDPA peers (cuDNN, flash) in the same run, merged into decode.json.
# Needs .carry/sysroot (scripts/make_gpu_carry.sh) named in the device call's carry, as scripts/gpu_check.sh does.
#
# Steps and caps (seconds): build 150 (warm build/gpu: seconds), tests 60, memcheck 40, bench 75, peers 90, merge;
# all within DECODE_BUDGET (295). A cold build may leave too little: then DECODE_STEPS="build tests sanitize", then
# DECODE_STEPS="build bench peers" in a second call (build/gpu is kept while the machine stays warm).
# Knobs: DECODE_QUICK=1 (B {1,16} x L {4k,64k}), DECODE_REPS (20), DECODE_STEPS="build tests sanitize bench peers",
#        OMNIATTN_COMMIT=<sha> (the device copy may have no .git).
# Output ($OUT): decode_check.log (steps, times, tables), build.log, tests.log, bench.log, decode.json (ours + peers,
# results schema: commit as bench/results/<machine>/decode.json), ours.json and peers.json (unmerged).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/build/gpu-out}
mkdir -p "$OUT"
T0=$(date +%s)
BUDGET=${DECODE_BUDGET:-295}
STEPS=${DECODE_STEPS:-"build tests sanitize bench peers"}
SYSROOT=$PWD/.carry/sysroot/usr
export LD_LIBRARY_PATH=$SYSROOT/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
LOG=$OUT/decode_check.log
BUILD=build/gpu
REPS=${DECODE_REPS:-20}
QUICK=()
[ "${DECODE_QUICK:-0}" = 1 ] && QUICK=(--quick)
COMMIT=${OMNIATTN_COMMIT:-$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)}

step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
elapsed() { echo $(($(date +%s) - T0)); }
say() { echo "== [$(elapsed) s] $*" | tee -a "$LOG"; }
# timed NAME CAP CMD...: runs CMD under timeout (CAP, or what the budget leaves minus 10 s for the merge).
timed() {
  local name=$1 cap=$2 start rc left
  shift 2
  left=$((BUDGET - $(elapsed) - 10))
  ((left < cap)) && cap=$left
  if ((cap < 5)); then say "$name SKIPPED (budget spent)"; return 124; fi
  start=$(date +%s)
  timeout -k 5 "$cap" "$@"
  rc=$?
  say "$name: $(($(date +%s) - start)) s, rc $rc$( ((rc == 124 || rc == 137)) && echo ' (TIMED OUT)')"
  return $rc
}

GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -1)
say "machine: $GPU_NAME; steps: $STEPS; commit $COMMIT"

if step build; then
  cmake -S . -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$SYSROOT" \
    -DOMNIATTN_CUDA_ARCHS="90a;80" >>"$OUT/build.log" 2>&1 || { say "configure FAILED"; tail -30 "$OUT/build.log"; exit 1; }
  timed build 150 cmake --build $BUILD -j "$(nproc)" --target omniattn_gpu_tests omniattn_bench_decode \
    >>"$OUT/build.log" 2>&1 || { say "build FAILED"; grep -E "error" "$OUT/build.log" | head -30 | tee -a "$LOG"; exit 1; }
fi

status=0
if step tests; then
  timed tests 60 $BUILD/tests/omniattn_gpu_tests --gtest_filter='*Decode*' >>"$OUT/tests.log" 2>&1 || status=1
  grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/tests.log" | tail -12 | tee -a "$LOG"
fi
if step sanitize; then
  timed memcheck 40 compute-sanitizer --tool memcheck --error-exitcode 9 $BUILD/tests/omniattn_gpu_tests \
    --gtest_filter='DecodeGpu.SanitizeSmall:DecodeGpu.BadBlockTable' >>"$OUT/tests.log" 2>&1 || status=1
fi
if step bench; then
  timed "ours decode" 75 $BUILD/bench/gpu/omniattn_bench_decode --reps "$REPS" "${QUICK[@]}" --commit "$COMMIT" \
    --out "$OUT/ours.json" >>"$OUT/bench.log" 2>&1
  tee -a "$LOG" <"$OUT/bench.log" >/dev/null
fi
if step peers; then
  timed "peers decode" 90 python3 bench/gpu/peers_decode.py --reps "$REPS" "${QUICK[@]}" --out "$OUT/peers.json" \
    >>"$OUT/bench.log" 2>&1
fi
if step bench || step peers; then
  python3 - "$OUT" "$COMMIT" "$GPU_NAME" <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, sys
out, commit, gpu = sys.argv[1:4]
rows, meta = [], {}
for name in ("ours.json", "peers.json"):
    path = os.path.join(out, name)
    if os.path.exists(path):
        data = json.load(open(path))
        meta = meta or data
        rows += data["rows"]
merged = {"device": meta.get("device", gpu), "date": meta.get("date", ""), "commit": commit,
          "command": "bash scripts/gpu_check_decode.sh (ours: bench/gpu/bench_decode.cpp; peers: bench/gpu/peers_decode.py, same call)",
          "rows": rows}
json.dump(merged, open(os.path.join(out, "decode.json"), "w"), indent=1)
# Side by side: ours (per layout) vs the best peer, contiguous cache.
key = lambda r: (r["batch"], r["B"], r["Sk"])
peers = {}
for r in rows:
    if r["impl"] != "omniattn_sm80" and "us" in r:
        peers.setdefault(key(r), {})[r["impl"]] = r["us"]
print(f"{'layout':10} {'batch':8} {'B':>3} {'L':>7} {'ours us':>9} {'TB/s':>6} {'cudnn us':>9} {'flash us':>9} {'vs cudnn':>8}")
for r in rows:
    if r["impl"] != "omniattn_sm80":
        continue
    p = peers.get(key(r), {})
    c = p.get("cudnn")
    ratio = f"{c / r['us']:.2f}x" if c else "-"
    print(f"{r['layout']:10} {r['batch']:8} {r['B']:3} {r['Sk']:7} {r['us']:9.1f} {r['tbps']:6.2f} "
          f"{c or float('nan'):9.1f} {p.get('flash2', float('nan')):9.1f} {ratio:>8}")
EOF
fi
say "done (status $status)"
exit $status
