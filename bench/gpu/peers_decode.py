#!/usr/bin/env python3
"""Decode peers (suite "decode"): PyTorch SDPA with the cuDNN and flash backends on a contiguous cache.

Same shapes as bench_decode.cpp: Hq = 32, Hkv = 8, D = 128, bf16, one query token; B in {1, 4, 16, 64} x
L in {4k, 16k, 64k, 128k}, and the ragged batch (one 128k sequence + 63 of 1k). SDPA has no ragged batch: the
peer runs it as two calls (B = 1 at 128k, then B = 63 at 1k) timed together. GQA through enable_gqa=True (K/V
read once per KV head); when a backend refuses it, the row records the error instead of expanding K/V (which
would read 4x the bytes). Rows: results schema, impl cudnn / flash2, us and KV bytes/s.
    python3 bench/gpu/peers_decode.py --out decode_peers.json [--quick] [--reps 20]
"""
import argparse
import datetime
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HQ, HKV, D = 32, 8, 128
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash2": SDPBackend.FLASH_ATTENTION}


def make(b, length, copies):
    """Query [B, Hq, 1, D] and `copies` contiguous caches K, V [B, L, Hkv, D] seen as [B, Hkv, L, D]."""
    q = torch.randn(b, 1, HQ, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
    caches = []
    for _ in range(copies):
        k = torch.randn(b, length, HKV, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
        v = torch.randn(b, length, HKV, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
        caches.append((k, v))
    return q, caches


def median_us(fn, reps, warmup=3):
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1000.0)
    times.sort()
    # Back to back: reps calls between one pair of events (host enqueue overlaps the previous call's kernels).
    batches = []  # the median of 3 batches, as bench_decode.cpp does
    for _ in range(3):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(reps):
            fn(i)
        stop.record()
        stop.synchronize()
        batches.append(start.elapsed_time(stop) * 1000.0 / reps)
    return times[len(times) // 2], sorted(batches)[1]


def copies_for(b, length):
    pool = b * length * HKV * D * 2 * 2
    return max(1, min(8, (256 << 20) // max(pool, 1)))


def run_backend(backend, groups, reps):
    """groups: list of (B, L) calls timed together. Returns (µs of one synchronized call, µs per call back to
    back) or raises."""
    inputs = [make(b, length, copies_for(b, length)) for b, length in groups]

    def call(i):
        with sdpa_kernel([BACKENDS[backend]]):
            for q, caches in inputs:
                k, v = caches[i % len(caches)]
                F.scaled_dot_product_attention(q, k, v, is_causal=False, enable_gqa=True)

    return median_us(call, reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backends", default="cudnn,flash2")
    args = ap.parse_args()
    batches, lengths = ([1, 16], [4096, 65536]) if args.quick else ([1, 4, 16, 64], [4096, 16384, 65536, 131072])
    cases = [("uniform", [(b, length)], b, length) for b in batches for length in lengths]
    cases.append(("ragged", [(1, 131072), (63, 1024)], 64, 131072))
    rows = []
    print(f"{'impl':8} {'batch':8} {'B':>4} {'L':>7} {'us':>10} {'TB/s':>8}")
    for backend in args.backends.split(","):
        for kind, groups, b, length in cases:
            kv_bytes = sum(gb * gl * HKV * D * 2 * 2 for gb, gl in groups)
            row = {"op": "decode", "impl": backend, "mask": "causal", "layout": "contiguous", "batch": kind,
                   "dtype": "bf16", "B": b, "Hq": HQ, "Hkv": HKV, "Sq": 1, "Sk": length, "D": D, "Dv": D,
                   "density": 1.0}
            try:
                us, b2b_us = run_backend(backend, groups, args.reps)
            except Exception as e:  # a refusal of the backend: recorded, not fatal
                row["error"] = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                print(f"{backend:8} {kind:8} {b:4} {length:7} refused: {row['error']}")
                rows.append(row)
                torch.cuda.empty_cache()
                continue
            flops = sum(4.0 * gb * HQ * gl * D for gb, gl in groups)
            row.update({"ms": us / 1000.0, "us": us, "b2b_us": b2b_us, "tflops": flops / (us * 1e-6) / 1e12,
                        "tbps": kv_bytes / (us * 1e-6) / 1e12})
            print(f"{backend:8} {kind:8} {b:4} {length:7} {us:10.1f} {row['tbps']:8.2f}")
            sys.stdout.flush()
            rows.append(row)
            torch.cuda.empty_cache()
    result = {"device": torch.cuda.get_device_name(0), "date": datetime.date.today().isoformat(), "commit": "peers",
              "command": " ".join(sys.argv), "torch": torch.__version__, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
