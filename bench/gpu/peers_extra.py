#!/usr/bin/env python3
"""Peer rows that ../shared/peers/peers_gpu.py does not measure, timed the same way (triton.testing.do_bench
median, 50 ms warm-up, 200 ms of repeats; B*N = 16k tokens, H*D = 2048; PyTorch SDPA with one backend forced).

Suites (--suite, comma list):
  fp16    forward, fp16, cuDNN and FA2 SDPA backends, every --dims x --lengths, causal and not
  gqa     forward, Hq=32 / Hkv=8 at D=128 (enable_gqa=True), every --dtypes, causal and not
  bwd     backward alone (out.backward(dO) on a kept graph; q/k/v grads reset each call), --dtypes, op "bwd"
  fwdbwd  forward + backward in --dtypes other than bf16 (peers_gpu.py has bf16), op "fwd+bwd"
Rows follow the results schema of ../shared/ARCHITECTURE.md (impl cudnn / flash2); a call the backend refuses
gives a row with ms = null. The JSON is rewritten after every shape, so a run cut short keeps what it measured.

  python3 bench/gpu/peers_extra.py --suite fp16,gqa --dims 64,128,256 --lengths 512,...,32768 --out x.json
"""
import argparse, datetime, json, os, time

import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
from triton.testing import do_bench

BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash2": SDPBackend.FLASH_ATTENTION}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FLOP_FACTOR = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}


def ms_of(fn, grad_to_none=None):
    return do_bench(fn, warmup=50, rep=200, grad_to_none=grad_to_none, return_mode="median")


def time_op(op, q, k, v, causal, gqa):
    """Median ms of one op on (q, k, v) in [B, H, N, D], with the current sdpa_kernel backend."""
    sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
    if op == "fwd":
        with torch.no_grad():
            return ms_of(sdpa)
    do = torch.randn_like(q)
    if op == "fwd+bwd":
        return ms_of(lambda: sdpa().backward(do), grad_to_none=[q, k, v])
    out = sdpa()  # op == "bwd": one forward, then the backward alone on the kept graph
    return ms_of(lambda: out.backward(do, retain_graph=True), grad_to_none=[q, k, v])


def measure(rows, op, dtype_name, D, N, Hq, Hkv):
    B = max(1, 16384 // N)
    dtype = DTYPES[dtype_name]
    grad = op != "fwd"
    q = torch.randn(B, Hq, N, D, device="cuda", dtype=dtype, requires_grad=grad)
    k, v = (torch.randn(B, Hkv, N, D, device="cuda", dtype=dtype, requires_grad=grad) for _ in range(2))
    for causal in (False, True):
        for impl, backend in BACKENDS.items():
            try:
                with sdpa_kernel([backend]):
                    ms = time_op(op, q, k, v, causal, Hq != Hkv)
                tf = 4.0 * B * Hq * N * N * D / (2 if causal else 1) * FLOP_FACTOR[op] / ms / 1e9
            except Exception as e:  # the backend refuses this shape
                ms = tf = None
                why = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
            rows.append(dict(op=op, impl=impl, mask="causal" if causal else "none", dtype=dtype_name, B=B, Hq=Hq,
                             Hkv=Hkv, Sq=N, Sk=N, D=D, Dv=D, density=1.0, ms=ms, tflops=tf, tbps=None, rel_err=None))
            print(f"{op:8s} {impl:7s} {dtype_name} D={D:3d} Hq={Hq:2d} Hkv={Hkv:2d} N={N:6d} causal={int(causal)} "
                  + (f"{tf:7.1f} TFLOP/s" if tf else f"n/a ({why})"), flush=True)
    del q, k, v
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="fp16,gqa,bwd")
    ap.add_argument("--dims", default="64,128,256")
    ap.add_argument("--lengths", default="512,1024,2048,4096,8192,16384,32768")
    ap.add_argument("--dtypes", default="bf16", help="dtypes of the gqa, bwd and fwdbwd suites")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "peers_extra.json"))
    a = ap.parse_args()
    suites = a.suite.split(",")
    dims = [int(x) for x in a.dims.split(",")]
    lengths = [int(x) for x in a.lengths.split(",")]
    dtypes = a.dtypes.split(",")
    plan = []  # (op, dtype, D, Hq, Hkv)
    if "fp16" in suites:
        plan += [("fwd", "fp16", D, 2048 // D, 2048 // D) for D in dims]
    if "gqa" in suites:
        plan += [("fwd", dt, 128, 32, 8) for dt in dtypes]
    if "bwd" in suites:
        plan += [("bwd", dt, D, 2048 // D, 2048 // D) for dt in dtypes for D in dims]
    if "fwdbwd" in suites:
        plan += [("fwd+bwd", dt, D, 2048 // D, 2048 // D) for dt in dtypes if dt != "bf16" for D in dims]
    doc = {"device": torch.cuda.get_device_name(0), "date": datetime.date.today().isoformat(),
           "torch": torch.__version__, "command": "python3 bench/gpu/peers_extra.py --suite " + a.suite, "rows": []}
    start = time.time()
    for op, dt, D, Hq, Hkv in plan:
        for N in lengths:
            measure(doc["rows"], op, dt, D, N, Hq, Hkv)
            with open(a.out, "w") as f:
                json.dump(doc, f, indent=1)
    print(f"wrote {a.out} ({len(doc['rows'])} rows, {time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
