#!/usr/bin/env bash
# gpu-check on a snapshot of HEAD, so that uncommitted work in the tree (a helper's half-written file) cannot
# break the device build.
#   here:    git archive --format=tar.gz -o .carry/lead.tgz HEAD      (and scripts/make_gpu_carry.sh once)
#   device:  OMNIATTN_COMMIT=<sha> bash scripts/gpu_check_snapshot.sh   (carry [".carry"]; env knobs of gpu_check.sh)
# On a warm machine the previous snapshot's build/ is kept and only files whose content changed are replaced
# (git archive stamps every file with the commit time, which would rebuild everything).
ROOT=$PWD
rm -rf /tmp/w.new && mkdir -p /tmp/w.new && tar xzf .carry/lead.tgz -C /tmp/w.new || exit 1
if [ -d /tmp/w/build ]; then
  python3 - <<'PY' || exit 1
import filecmp, os, shutil
new, old = "/tmp/w.new", "/tmp/w"
for top in os.listdir(old):  # files gone from the snapshot (build/ and the .carry link stay)
    if top not in ("build", ".carry") and not os.path.exists(os.path.join(new, top)):
        p = os.path.join(old, top)
        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
for d, _, files in os.walk(new):
    rel = os.path.relpath(d, new)
    os.makedirs(os.path.join(old, rel), exist_ok=True)
    for f in files:
        src, dst = os.path.join(d, f), os.path.join(old, rel, f)
        if not os.path.exists(dst) or not filecmp.cmp(src, dst, shallow=False):
            shutil.copy2(src, dst)
            os.utime(dst)  # newer than the build outputs
PY
  rm -rf /tmp/w.new
else
  rm -rf /tmp/w && mv /tmp/w.new /tmp/w
fi
[ -e /tmp/w/.carry ] || ln -s "$ROOT/.carry" /tmp/w/.carry
cd /tmp/w || exit 1
exec bash scripts/gpu_check.sh
