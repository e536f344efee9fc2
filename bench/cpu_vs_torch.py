#!/usr/bin/env python3
"""omniattn's CPU forward against PyTorch's CPU scaled_dot_product_attention, side by side in one run.

Both get the same thread count (torch.set_num_threads and OMP_NUM_THREADS for the omniattn CLI), the same
shapes (fp32, B=1, 16 heads, N=4096, D=128 by default; non-causal and causal), inputs drawn from the same
N(0, 1) distribution, the same warm-up and number of repeats (median), and the same FLOP formula
(4·B·H·pairs·D over the visible (query, key) pairs: about half for causal). The machine's fp32 FMA peak is
measured (`omniattn peak`, one FMA loop per thread on all threads) and each row reports its fraction of it.

Writes bench/results/cpu-<model>/fwd.json (rows `omniattn` and `torch_cpu`) and prints a table.
    python3 bench/cpu_vs_torch.py --cli build/cpu/apps/omniattn/omniattn
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def amd_core(family, model):
    if family == 0x17:
        return "zen2" if model >= 0x30 else "zen"
    if family == 0x19:
        zen4 = 0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF
        return "zen4" if zen4 else "zen3"
    if family == 0x1A:
        return "zen5"
    return f"family{family}" if family >= 0 else ""


def machine_slug():
    """cpu-<model> from /proc/cpuinfo (lscpu where it lacks a model name), e.g. cpu-epyc-zen5."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = info.get("model name", "")
    if not name:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        name = m.group(1).strip() if m else "unknown"
    lower = name.lower()
    if info.get("vendor_id") == "AuthenticAMD":
        product = next((p for p in ("epyc", "threadripper", "ryzen") if p in lower), "amd")
        core = amd_core(int(info.get("cpu family", -1)), int(info.get("model", -1)))
        return name, "cpu-" + product + ("-" + core if core else "")
    filler = {"r", "tm", "cpu", "processor", "core", "with", "intel"}
    words = [w for w in re.split(r"[^a-z0-9]+", lower) if w and w not in filler and "ghz" not in w]
    return name, "cpu-" + ("-".join(words) or "unknown")


def git_commit():
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def visible_pairs(sq, sk, causal):
    """Visible (query, key) pairs of one head: bottom-right aligned causal keeps j <= i + sk - sq."""
    if not causal:
        return sq * sk
    return sum(max(0, min(sk, i + sk - sq + 1)) for i in range(sq))


def busy_cpu_seconds():
    """CPU-seconds spent by every process on the machine so far (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
        return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cores_in_use(seconds=3.0):
    """Average number of cores busy (all processes) over the next `seconds`, or None."""
    b0 = busy_cpu_seconds()
    time.sleep(seconds)
    b1 = busy_cpu_seconds()
    return None if b0 is None or b1 is None else (b1 - b0) / seconds


def wait_until_quiet(threads, max_wait):
    """Waits (up to max_wait s) until other processes use under 0.1 core: work sharing the cores slows
    both sides unevenly. Returns the cores in use when the measurement starts."""
    start = time.time()
    used = cores_in_use()
    while used is not None and used > 0.1 and time.time() - start < max_wait:
        print(f"{used:.2f} cores busy: waiting for a quiet machine ({int(time.time() - start)} s)", flush=True)
        used = cores_in_use(10.0)
    if used is not None and used > 0.1:
        print(f"warning: {used:.2f} cores busy with other work on this {threads}-thread run; numbers are noisy")
    return used


def run_cli(cli, args, env):
    result = subprocess.run([cli] + args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{cli} {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def torch_case(torch, a, causal, check_rows):
    """Median ms of torch's SDPA and its relative error against float64 on the last rows."""
    gen = torch.Generator().manual_seed(0)
    shape = (a.batch, a.heads, a.seqlen, a.dim)  # torch's own layout [B, H, S, D], contiguous
    q, k, v = (torch.randn(shape, generator=gen, dtype=torch.float32) for _ in range(3))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    times = []
    with torch.no_grad():
        for i in range(a.warmup + a.repeats):
            t0 = time.perf_counter()
            out = sdpa(q, k, v, is_causal=causal)
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        rows = min(check_rows, a.seqlen)
        rel_err = None
        if rows > 0:
            # float64 on the last rows with all keys; the causal mask written out bottom-right aligned
            # (torch's is_causal is top-left aligned when Sq != Sk).
            i = torch.arange(a.seqlen - rows, a.seqlen).unsqueeze(1)
            j = torch.arange(a.seqlen).unsqueeze(0)
            mask = (j <= i) if causal else None
            ref = sdpa(q[:, :, -rows:].double(), k.double(), v.double(), attn_mask=mask)
            ours = out[:, :, -rows:].double()
            rel_err = float(torch.linalg.norm(ours - ref) / torch.linalg.norm(ref))
    return statistics.median(times), rel_err


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cli", default=os.path.join(REPO, "build/cpu/apps/omniattn/omniattn"), help="omniattn binary")
    p.add_argument("--threads", type=int, default=0, help="threads for both (0: all CPUs)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--seqlen", type=int, default=4096)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--masks", default="none,causal")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--check-rows", type=int, default=32, help="last query rows compared with float64")
    p.add_argument("--out", default="", help="JSON path (default bench/results/<machine>/fwd.json)")
    p.add_argument("--wait-quiet", type=int, default=600, help="seconds to wait for idle cores (other work < 0.1 core)")
    a = p.parse_args()

    threads = a.threads or os.cpu_count()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch starts its OpenMP pool
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(threads)
    model, slug = machine_slug()
    out_path = a.out or os.path.join(REPO, "bench", "results", slug, "fwd.json")

    load = wait_until_quiet(threads, a.wait_quiet)
    busy0, own0, wall0 = busy_cpu_seconds(), own_cpu_seconds(), time.time()
    peak = json.loads(run_cli(a.cli, ["peak", "--threads", str(threads), "--json"], env))
    peak_tflops = peak["peak_tflops"]
    print(f"{model} ({slug}), {threads} threads; measured fp32 FMA peak {peak_tflops:.4f} TFLOP/s "
          f"({peak['simd']}, {peak['peak_tflops_one_thread']:.4f} on one thread); torch {torch.__version__}")

    rows = []
    shape = dict(B=a.batch, Hq=a.heads, Hkv=a.heads, Sq=a.seqlen, Sk=a.seqlen, D=a.dim, Dv=a.dim)
    bytes_moved = 4.0 * a.batch * a.seqlen * a.heads * a.dim * 4 + 4.0 * a.batch * a.heads * a.seqlen
    for mask in a.masks.split(","):
        causal = mask == "causal"
        if mask not in ("none", "causal"):
            sys.exit(f"--masks: expected none or causal, given {mask}")
        # omniattn through its CLI (same harness as `omniattn bench`), then torch, one mask at a time.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "omniattn.json")
            run_cli(a.cli, ["bench", "--ops", "fwd", "--dtypes", "f32", "--masks", mask, "--batch", str(a.batch),
                            "--heads", str(a.heads), "--dim", str(a.dim), "--seqlens", str(a.seqlen),
                            "--repeats", str(a.repeats), "--warmup", str(a.warmup), "--threads", str(threads),
                            "--check-rows", str(a.check_rows), "--json", path], env)
            with open(path) as f:
                ours = json.load(f)["rows"]
        if not ours:
            sys.exit(f"omniattn ran no {mask} case (no fast backend took it?)")
        row = dict(ours[0], impl="omniattn")
        row["frac_peak"] = row["tflops"] / peak_tflops
        rows.append(row)

        ms, rel_err = torch_case(torch, a, causal, a.check_rows)
        pairs = a.batch * a.heads * visible_pairs(a.seqlen, a.seqlen, causal)
        tflops = 4.0 * pairs * a.dim / (ms * 1e-3) / 1e12
        rows.append(dict(op="fwd", impl="torch_cpu", mask=mask, dtype="f32", **shape,
                         density=pairs / (a.batch * a.heads * a.seqlen * a.seqlen), ms=ms, tflops=tflops,
                         tbps=bytes_moved / (ms * 1e-3) / 1e12, rel_err=rel_err, frac_peak=tflops / peak_tflops))

    # Cores used by other processes during the measurement: near 0 means the numbers are clean.
    busy1, wall1 = busy_cpu_seconds(), time.time()
    other_cores = None
    if busy0 is not None and busy1 is not None:
        other_cores = max(0.0, (busy1 - busy0) - (own_cpu_seconds() - own0)) / (wall1 - wall0)
        print(f"other processes used {other_cores:.2f} cores on average during the run")
    command = "python3 bench/cpu_vs_torch.py " + " ".join(sys.argv[1:])
    doc = {"device": model, "date": datetime.date.today().isoformat(), "commit": git_commit(), "command": command,
           "machine": slug, "threads": threads, "peak_tflops": peak_tflops, "peak": peak,
           "torch": torch.__version__, "busy_cores_at_start": load,
           "other_processes_cores": other_cores, "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    print(f"\n{'impl':<10} {'mask':<7} {'ms':>9} {'TFLOP/s':>8} {'% peak':>7} {'rel_err':>9} {'vs torch':>8}")
    for r in rows:
        torch_ms = next(x["ms"] for x in rows if x["impl"] == "torch_cpu" and x["mask"] == r["mask"])
        err = f"{r['rel_err']:.2e}" if r["rel_err"] is not None else "-"
        print(f"{r['impl']:<10} {r['mask']:<7} {r['ms']:9.2f} {r['tflops']:8.4f} {100 * r['frac_peak']:6.1f}% "
              f"{err:>9} {torch_ms / r['ms']:7.2f}x")
    print(f"wrote {os.path.relpath(out_path)}")
    slower = [r["mask"] for r in rows if r["impl"] == "omniattn" and
              r["ms"] > next(x["ms"] for x in rows if x["impl"] == "torch_cpu" and x["mask"] == r["mask"])]
    if slower:
        print(f"omniattn is slower than torch on: {', '.join(slower)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
