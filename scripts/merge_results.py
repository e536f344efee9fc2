#!/usr/bin/env python3
"""Merges our benchmark rows and the peers' rows (same run, same machine) into one results file (schema of
../shared/ARCHITECTURE.md) and prints side-by-side tables: TFLOP/s per impl with the ratio of our best row to
cuDNN, and the peak memory of forward calls.

  scripts/merge_results.py ours.json peers.json peer_memory.json --ops fwd --out fwd.json \
      --gpu-name "$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0)" --command "..."

Rows without a time (peer_memory.py's) are folded into the timed row of the same shape and impl. `machine`
(the bench/results/<machine>/ folder) is derived from the GPU name: "NVIDIA H200" -> h200.
"""
import argparse, json, os, re

SHAPE = ("op", "mask", "dtype", "B", "Hq", "Hkv", "Sq", "Sk", "D", "Dv")


def key(r):
    return tuple(r.get(f) for f in SHAPE)


def machine_slug(gpu_name):
    """'NVIDIA H100 80GB HBM3' -> 'h100', 'NVIDIA H200' -> 'h200', 'NVIDIA A100-SXM4-80GB' -> 'a100'."""
    name = re.sub(r"^nvidia\s+", "", gpu_name.strip().lower())
    m = re.match(r"[a-z]*\d+[a-z]*", name)
    return m.group(0) if m else re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "gpu"


def load(paths):
    docs = []
    for path in paths:
        if not os.path.exists(path):
            print("merge: missing", path)
            continue
        try:
            with open(path) as f:
                docs.append((path, json.load(f)))
        except json.JSONDecodeError as e:
            print(f"merge: {path} is not JSON ({e}); skipped")
    return docs


def merge_rows(docs, ops):
    rows, by_key = [], {}
    untimed = []
    for _, d in docs:
        for r in d.get("rows", []):
            if ops and r.get("op") not in ops:
                continue
            if r.get("ms") is None and "peak_mb" in r:
                untimed.append(r)
                continue
            rows.append(r)
            by_key[key(r) + (r.get("impl"),)] = r
    for r in untimed:  # memory rows: fold into the timed row of the same shape and impl, else keep
        target = by_key.get(key(r) + (r.get("impl"),))
        if target is None:
            rows.append(r)
        else:
            target.update({f: r[f] for f in ("peak_mb", "extra_mb", "peak_mb_grad", "note") if f in r})
    return rows


def print_tables(rows):
    by_key = {}
    for r in rows:
        by_key.setdefault(key(r), {})[r["impl"]] = r
    ours = sorted({r["impl"] for r in rows if r["impl"].startswith("omniattn")})
    peers = sorted({r["impl"] for r in rows if not r["impl"].startswith("omniattn")})
    order = lambda kv: (kv[0][0], kv[0][8], kv[0][2], kv[0][4], kv[0][1] or "", kv[0][6])
    head = f"{'op':8s} {'mask':7s} {'dt':4s} {'B':>3s} {'Hq':>3s} {'Hkv':>3s} {'N':>6s} {'D':>4s} |"
    print(head + "".join(f"{i:>14s}" for i in ours + peers) + "   best/cudnn")
    for k, impls in sorted(by_key.items(), key=order):
        if not any(i in impls for i in ours):
            continue
        val = lambda i: (impls.get(i) or {}).get("tflops") or (impls.get(i) or {}).get("tbps")
        cells = "".join(f"{val(i):14.1f}" if val(i) else f"{'-':>14s}" for i in ours + peers)
        best = max((val(i) or 0) for i in ours)
        ratio = f"{best / val('cudnn'):8.2f}" if val("cudnn") and best else f"{'-':>8s}"
        print(f"{k[0]:8s} {str(k[1]):7s} {str(k[2]):4s} {k[3]:3d} {k[4]:3d} {k[5]:3d} {k[6]:6d} {k[8]:4d} |"
              + cells + "   " + ratio)
    mem = [(k, impls) for k, impls in sorted(by_key.items(), key=order)
           if any("peak_mb" in r and r["peak_mb"] is not None for r in impls.values())]
    if mem:
        print("\npeak device memory of one call, MB (extra = beyond the caller's tensors)")
        print(head + "".join(f"{i:>22s}" for i in ours + peers))
        for k, impls in mem:
            cell = lambda r: f"{r['peak_mb']:.0f} (+{r.get('extra_mb') or 0:.0f})" if r and r.get("peak_mb") else "-"
            print(f"{k[0]:8s} {str(k[1]):7s} {str(k[2]):4s} {k[3]:3d} {k[4]:3d} {k[5]:3d} {k[6]:6d} {k[8]:4d} |"
                  + "".join(f"{cell(impls.get(i)):>22s}" for i in ours + peers))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ops", default="", help="keep only these ops (comma list), e.g. fwd or bwd,fwd+bwd")
    ap.add_argument("--gpu-name", default="", help="the GPU's name (nvidia-smi); default: the inputs' device")
    ap.add_argument("--gpu-info", default="", help="nvidia-smi's name, memory, max SM clock, driver, GPU count")
    ap.add_argument("--command", default="make gpu-check (scripts/gpu_check.sh): ours + peers in one device call")
    a = ap.parse_args()
    docs = load(a.inputs)
    ops = set(filter(None, a.ops.split(",")))
    rows = merge_rows(docs, ops)
    if not rows:
        print(f"merge: no rows for ops {a.ops or 'all'}; {a.out} not written")
        return
    ours_doc = next((d for _, d in docs if any(r.get("impl", "").startswith("omniattn") for r in d.get("rows", []))),
                    docs[0][1])
    device = a.gpu_name or ours_doc.get("device", "")
    devices = {d.get("device") for _, d in docs if d.get("device")}
    if len(devices) > 1:
        print(f"merge: WARNING: inputs from different devices {sorted(devices)}")
    merged = {"device": device, "machine": machine_slug(device), "date": ours_doc.get("date"),
              "commit": ours_doc.get("commit"), "command": a.command,
              **({"nvidia_smi": a.gpu_info} if a.gpu_info else {}),
              "sources": [{"file": os.path.basename(p), "device": d.get("device"), "command": d.get("command"),
                           **({"torch": d["torch"]} if "torch" in d else {})} for p, d in docs],
              "kernels": [k for _, d in docs for k in d.get("kernels", [])],
              "skipped": [s for _, d in docs for s in d.get("skipped", []) if not ops or s.get("op") in ops],
              "rows": rows}
    with open(a.out, "w") as f:
        json.dump(merged, f, indent=1)
    print(f"merge: wrote {a.out} ({len(rows)} rows; commit it as bench/results/{merged['machine']}/"
          f"{os.path.basename(a.out)})")
    print_tables(rows)


if __name__ == "__main__":
    main()
