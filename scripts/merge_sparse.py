#!/usr/bin/env python3
"""Merges omniattn_bench_sparse's rows and peers_sparse.py's (FlexAttention, cuDNN), measured in the same device call,
into sparse.json (results schema + pattern, block, pair_density, tflops_blocks) and prints the table of issue 5's
targets per (pattern, block, N, op):
  speed-up  = peer ms / our ms (peer: flex for block masks, cudnn for the dense rows)   target >= 1.5x flex
  blk/dense = our tflops_blocks / our dense (mask none) tflops, same N and op           target >= 0.90 at N >= 8k
  dense/us  = our dense ms / our ms                                                     target >= 8x, random10, 32k

  scripts/merge_sparse.py ours_sparse.json peers_sparse.json --out sparse.json --commit SHA --gpu-name NAME
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from merge_results import machine_slug  # noqa: E402

KEY = ("pattern", "mask", "block", "Sq", "op")
THROUGHPUT_PATTERNS = ("window", "sinks", "random10", "random30")  # the >= 90% target's patterns


def load(path):
    if not os.path.exists(path):
        print("merge_sparse: missing", path)
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        print(f"merge_sparse: {path} is not JSON ({e}); skipped")
        return {}


def key(r):
    return tuple(r.get(k) for k in KEY)


def fmt(x, spec, width):
    return f"{x:{width}{spec}}" if isinstance(x, (int, float)) else f"{'-' if x is None else x:>{width}}"


def ratio(x, width, target=None):
    """'1.52x ok' / '0.80x <' against a target, '-' when unknown."""
    if x is None:
        return f"{'-':>{width}s}   "
    return f"{x:{width - 1}.2f}x" + ("   " if target is None else " ok" if x >= target else " < ")


def print_table(rows, skipped):
    ours, peers = {}, {}
    for r in rows:
        (ours if r["impl"].startswith("omniattn") else peers.setdefault(r["impl"], {}))[key(r)] = r
    skipped_ours = {(s.get("pattern"), s.get("mask"), s.get("block") or None, s.get("N"), s.get("op")): s["reason"]
                    for s in skipped if s.get("impl", "omniattn").startswith("omniattn")}
    keys = sorted(set(ours) | {k for p in peers.values() for k in p} | set(skipped_ours),
                  key=lambda k: (k[3] or 0, k[0] != "dense", k[1] != "causal", k[0], -(k[2] or 0),
                                 ["fwd", "bwd", "fwd+bwd"].index(k[4]) if k[4] in ("fwd", "bwd", "fwd+bwd") else 9))
    print(f"{'pattern':22s} {'mask':6s} {'blk':>3s} {'N':>6s} {'op':8s} {'dens':>6s} | {'ours ms':>9s} {'TFLOP/s':>7s} "
          f"{'blocks':>7s} {'backend':12s} | {'peer':5s} {'peer ms':>9s} {'speed-up':>10s} | {'blk/dense':>10s}"
          f"{'dense/us':>10s}{'rel_err':>8s}")
    counts = {"flex": [0, 0], "throughput": [0, 0], "8x": [0, 0]}
    for k in keys:
        pattern, mask, block, n, op = k
        o = ours.get(k)
        peer_name = "flex" if mask == "block" else "cudnn"
        p = peers.get(peer_name, {}).get(k)
        dense = ours.get(("dense", "none", None, n, op))
        any_row = o or p
        density = any_row["density"] if any_row else None
        speed = p["ms"] / o["ms"] if o and p else None
        blk = o["tflops_blocks"] / dense["tflops"] if o and dense and o.get("tflops_blocks") else None
        dense_x = dense["ms"] / o["ms"] if o and dense and mask == "block" else None
        if mask == "block" and speed is not None:
            counts["flex"][speed >= 1.5] += 1
        if blk is not None and pattern.startswith(THROUGHPUT_PATTERNS) and n >= 8192:
            counts["throughput"][blk >= 0.9] += 1
        if dense_x is not None and pattern == "random10" and n >= 32768 and op in ("fwd", "fwd+bwd"):
            counts["8x"][dense_x >= 8] += 1
        ours_ms = fmt(o["ms"], ".3f", 9) if o else f"{'skip' if k in skipped_ours else '-':>9s}"
        print(f"{pattern:22s} {mask:6s} {fmt(block, 'd', 3)} {n:6d} {op:8s} {fmt(density, '.3f', 6)} | {ours_ms} "
              f"{fmt(o and o['tflops'], '.1f', 7)} {fmt(o and o.get('tflops_blocks'), '.1f', 7)} "
              f"{(o or {}).get('backend', '-'):12s} | {peer_name:5s} {fmt(p and p['ms'], '.3f', 9)} "
              f"{ratio(speed, 7, 1.5 if mask == 'block' else None)}| "
              f"{ratio(blk, 7, 0.9 if pattern.startswith(THROUGHPUT_PATTERNS) and n >= 8192 else None)}"
              f"{ratio(dense_x, 7, 8 if pattern == 'random10' and n >= 32768 else None)}"
              f"{fmt(o and o.get('rel_err'), '.1e', 8)}")
    met = {name: f"{c[1]}/{sum(c)}" for name, c in counts.items()}
    print(f"\ntargets (rows met / measured): >= 1.5x flex {met['flex']}; computed-block throughput >= 0.90 of dense "
          f"(window, sinks, random, N >= 8k) {met['throughput']}; random10 at 32k >= 8x dense {met['8x']}")
    reasons = {}
    for s in skipped:
        reasons.setdefault((s.get("impl", "omniattn"), s["reason"][:240]), []).append(s["op"])
    if reasons:
        print("\nskipped (impl: reason, rows):")
        for (impl, reason), ops in reasons.items():
            print(f"  {impl}: {reason}  [{len(ops)} rows]")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ours")
    ap.add_argument("peers")
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", default="")
    ap.add_argument("--gpu-name", default="")
    ap.add_argument("--command", default="GPU_CHECK_STEPS='build sparse' bash scripts/gpu_check.sh (ours: "
                                          "bench/gpu/bench_sparse.cpp; peers: bench/gpu/peers_sparse.py, same call)")
    a = ap.parse_args()
    ours, peers = load(a.ours), load(a.peers)
    rows = ours.get("rows", []) + peers.get("rows", [])
    skipped = ours.get("skipped", []) + peers.get("skipped", [])
    if not rows and not skipped:
        print("merge_sparse: no rows; nothing written")
        return
    device = a.gpu_name or ours.get("device") or peers.get("device", "")
    if ours.get("device") and peers.get("device") and ours["device"] != peers["device"]:
        print(f"merge_sparse: WARNING: ours ran on {ours['device']}, the peers on {peers['device']}")
    merged = {"device": device, "machine": machine_slug(device) if device else "",
              "date": ours.get("date", peers.get("date", "")), "commit": a.commit or ours.get("commit", ""),
              "command": a.command,
              "sources": [{"file": os.path.basename(p), "device": d.get("device"), "command": d.get("command"),
                           **({"torch": d["torch"]} if "torch" in d else {})}
                          for p, d in ((a.ours, ours), (a.peers, peers)) if d],
              "skipped": skipped, "rows": rows}
    with open(a.out, "w") as f:
        json.dump(merged, f, indent=1)
    print(f"merge_sparse: wrote {a.out} ({len(rows)} rows, {len(skipped)} skipped; commit it as "
          f"bench/results/{merged['machine']}/sparse.json)")
    print_table(rows, skipped)


if __name__ == "__main__":
    main()
