#!/usr/bin/env python3
"""Merges our benchmark rows and the peers' rows (same run, same machine) into one results file and prints
a side-by-side table: for each shape, our TFLOP/s (or TB/s) and the ratio to each peer."""
import argparse, json, os


def key(r):
    return (r["op"], r.get("mask"), r.get("dtype"), r["B"], r["Hq"], r["Hkv"], r["Sq"], r["Sk"], r["D"], r.get("Dv"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    merged, rows = None, []
    for path in a.inputs:
        if not os.path.exists(path):
            print("missing", path)
            continue
        with open(path) as f:
            d = json.load(f)
        merged = merged or {k: v for k, v in d.items() if k != "rows"}
        rows += d["rows"]
    if merged is None:
        return
    merged["rows"] = rows
    merged["command"] = "make gpu-check (scripts/gpu_check.sh): ours + ../shared/peers/peers_gpu.py in one call"
    with open(a.out, "w") as f:
        json.dump(merged, f, indent=1)
    by_key = {}
    for r in rows:
        by_key.setdefault(key(r), {})[r["impl"]] = r
    ours_impls = sorted({r["impl"] for r in rows if r["impl"].startswith("omniattn")})
    peers = sorted({r["impl"] for r in rows if not r["impl"].startswith("omniattn")})
    metric = lambda r: r.get("tflops") or r.get("tbps")
    print(f"{'op':8s} {'mask':7s} {'dt':4s} {'B':>3s} {'H':>3s} {'N':>6s} {'D':>4s} | " +
          " ".join(f"{i:>14s}" for i in ours_impls + peers))
    for k, impls in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][8], kv[0][6])):
        if not any(i in impls for i in ours_impls):
            continue
        cells = []
        for i in ours_impls + peers:
            r = impls.get(i)
            cells.append(f"{metric(r):14.1f}" if r and metric(r) else f"{'-':>14s}")
        print(f"{k[0]:8s} {str(k[1]):7s} {str(k[2]):4s} {k[3]:3d} {k[4]:3d} {k[6]:6d} {k[8]:4d} | " + " ".join(cells))


if __name__ == "__main__":
    main()
