#!/usr/bin/env bash
# The GPU machine cannot install packages: unpack the Debian packages the build needs into .carry/sysroot
# (ignored by git), to be named in the device call's `carry`. scripts/gpu_check.sh finds them there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .carry/debs .carry/sysroot
cd .carry/debs
apt-get download libfmt-dev libfmt9 libhwy-dev libhwy1 libgtest-dev libcli11-dev nlohmann-json3-dev >/dev/null
for f in *.deb; do dpkg -x "$f" ../sysroot; done
cd ..
rm -rf debs
# Copy the peers' script next to it (../shared does not travel).
cp ../../shared/peers/peers_gpu.py . 2>/dev/null || cp /work/shared/peers/peers_gpu.py .
du -sh sysroot
