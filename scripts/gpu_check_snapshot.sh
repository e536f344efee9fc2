#!/usr/bin/env bash
# gpu-check on a snapshot of HEAD, so that uncommitted work in the tree (a helper's half-written file) cannot
# break the device build.
#   here:    git archive --format=tar.gz -o .carry/lead.tgz HEAD      (and scripts/make_gpu_carry.sh once)
#   device:  OMNIATTN_COMMIT=<sha> bash scripts/gpu_check_snapshot.sh   (carry [".carry"]; env knobs of gpu_check.sh)
ROOT=$PWD
rm -rf /tmp/w && mkdir -p /tmp/w && tar xzf .carry/lead.tgz -C /tmp/w && ln -s "$ROOT/.carry" /tmp/w/.carry && cd /tmp/w
exec bash scripts/gpu_check.sh
