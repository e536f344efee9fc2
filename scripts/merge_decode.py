#!/usr/bin/env python3
"""Merges our decode rows (omniattn_bench_decode) and the SDPA peers' rows (bench/gpu/peers_decode.py), measured in
the same device call, into decode.json (results schema) and prints the side-by-side table with the issue's targets:
ours vs cuDNN per (layout, B, L), and KV bytes/s against the read bandwidth measured in the same run.

  scripts/merge_decode.py ours_decode.json peers_decode.json --out decode.json --commit SHA --gpu-name NAME
"""
import argparse
import json
import os


def load(path):
    if not os.path.exists(path):
        print("merge_decode: missing", path)
        return {}
    with open(path) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ours")
    ap.add_argument("peers")
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--gpu-name", default="")
    a = ap.parse_args()
    ours, peers = load(a.ours), load(a.peers)
    rows = ours.get("rows", []) + peers.get("rows", [])
    if not rows:
        print("merge_decode: no rows; nothing written")
        return
    read_tbps = ours.get("read_tbps")
    merged = {"device": ours.get("device", a.gpu_name), "date": ours.get("date", peers.get("date", "")),
              "commit": a.commit, "read_tbps": read_tbps,
              "command": "GPU_CHECK_STEPS='build decode' bash scripts/gpu_check.sh (ours: bench/gpu/bench_decode.cpp; "
                         "peers: bench/gpu/peers_decode.py, same call)",
              "sources": [{"file": os.path.basename(p), "command": d.get("command"), **({"torch": d["torch"]} if "torch" in d else {})}
                          for p, d in ((a.ours, ours), (a.peers, peers)) if d],
              "rows": rows}
    with open(a.out, "w") as f:
        json.dump(merged, f, indent=1)
    print(f"merge_decode: wrote {a.out} ({len(rows)} rows); measured read bandwidth {read_tbps} TB/s")
    key = lambda r: (r["batch"], r["B"], r["Sk"])
    peer = {}
    for r in rows:
        if not r["impl"].startswith("omniattn") and r.get("us"):
            peer.setdefault(key(r), {})[r["impl"]] = r["us"]
            peer[key(r)][r["impl"] + "_b2b"] = r.get("b2b_us")
    print(f"{'layout':10} {'batch':8} {'B':>3} {'L':>7} {'ours us':>9} {'TB/s':>6} {'of read':>7} {'cudnn us':>9} "
          f"{'flash us':>9} {'vs cudnn':>8} {'host us':>8} {'b2b us':>8} {'cudnn b2b':>9} {'b2b vs':>7}")
    for r in rows:
        if not r["impl"].startswith("omniattn"):
            continue
        p = peer.get(key(r), {})
        c = p.get("cudnn")
        frac = f"{r['tbps'] / read_tbps:7.0%}" if read_tbps else f"{'-':>7}"
        ratio = f"{c / r['us']:.2f}x" if c else "-"
        print(f"{r['layout']:10} {r['batch']:8} {r['B']:3} {r['Sk']:7} {r['us']:9.1f} {r['tbps']:6.2f} {frac} "
              f"{c or float('nan'):9.1f} {p.get('flash2', float('nan')):9.1f} {ratio:>8} {r.get('host_us', 0):8.1f} "
              f"{r.get('b2b_us', 0):8.1f} {p.get('cudnn_b2b') or float('nan'):9.1f} "
              f"{(p.get('cudnn_b2b') or 0) / r['b2b_us'] if r.get('b2b_us') else 0:6.2f}x")


if __name__ == "__main__":
    main()
