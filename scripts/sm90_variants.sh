#!/usr/bin/env bash
# Tuning variants of the sm_90a table in one device call (docs/kernels.md, optimization log):
#   here:    git archive --format=tar.gz -o .carry/lead.tgz HEAD; write .carry/variants.txt, one variant a line:
#            name|dims|sed expression applied to src/cuda/flash/sm90_config.hpp (empty: the table as committed)
#   device:  bash scripts/sm90_variants.sh   (carry [".carry"]); writes $OUT/v<i>.json per variant
ROOT=$PWD; SYS=$ROOT/.carry/sysroot/usr
export LD_LIBRARY_PATH=$SYS/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
rm -rf /tmp/w && mkdir -p /tmp/w && tar xzf .carry/lead.tgz -C /tmp/w && cd /tmp/w
cmake -S . -B b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$SYS -DOMNIATTN_CUDA_ARCHS="90a;80" > $OUT/build.log 2>&1
cp src/cuda/flash/sm90_config.hpp /tmp/pristine.hpp
i=0
while IFS='|' read -r name dims expr; do
  [ -z "$name" ] && continue
  cp /tmp/pristine.hpp src/cuda/flash/sm90_config.hpp
  [ -n "$expr" ] && sed -i "$expr" src/cuda/flash/sm90_config.hpp
  cmake --build b -j16 --target omniattn_bench_gpu >> $OUT/build.log 2>&1 || { echo "$name: BUILD FAILED"; grep error $OUT/build.log | tail -3; continue; }
  echo "== $name"
  timeout 120 b/bench/gpu/omniattn_bench_gpu --backend sm90 --ops fwd --dims $dims --lengths 512,1024,4096,16384 \
    --dtypes bf16 --no-gqa --reps 10 --out $OUT/v$i.json 2>&1 | grep -E "TFLOP" | sed 's/ *rel_err.*//'
  i=$((i+1))
done < "${VARIANTS:-$ROOT/.carry/variants.txt}"
