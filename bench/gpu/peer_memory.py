#!/usr/bin/env python3
"""Peak device memory of one forward call of the peers (PyTorch SDPA, cuDNN and FA2 backends), at the shapes of
omniattn_bench_gpu: B*N = 16k tokens, H*D = 2048, causal and not, + Hq=32 / Hkv=8 at D=128 (enable_gqa=True).

For each call: inputs allocated, one warm-up call (plans, workspaces), torch.cuda.reset_peak_memory_stats(),
then the measured call; torch.cuda.max_memory_allocated() - memory_allocated() before the call is what the call
added at its peak (output + softmax statistics + workspace). Rows (results schema, op "fwd", ms = null):
  peak_mb       inputs (Q, K, V) + what the call added: the call's total, comparable with omniattn's peak_mb
                (Q, K, V, O, LSE + the library's own allocations)
  extra_mb      what the call added beyond its output O (omniattn's extra_mb does not count O and LSE, which
                the caller allocates)
  peak_mb_grad  peak_mb of a training forward (requires_grad inputs: the graph keeps the LSE for backward)
Only PyTorch's caching allocator is seen: a library that calls cudaMalloc itself is not (cuDNN's workspace comes
from PyTorch's allocator). merge_results.py folds these fields into the timed rows of the same shape and impl.

  python3 bench/gpu/peer_memory.py --dims 64,128,256 --lengths 512,...,32768 --out peer_memory.json
"""
import argparse, datetime, json, os

import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash2": SDPBackend.FLASH_ATTENTION}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MB = float(1 << 20)


def added_bytes(q, k, v, causal, gqa, grad):
    """Bytes one forward call adds at its peak, and the bytes of its output."""
    def call():
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
    with torch.set_grad_enabled(grad):
        call()  # warm-up (result dropped): cuDNN builds its plan
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        out_bytes = out.numel() * out.element_size()
        del out
    return peak - before, out_bytes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default="64,128,256")
    ap.add_argument("--lengths", default="512,1024,2048,4096,8192,16384,32768")
    ap.add_argument("--dtypes", default="bf16,fp16")
    ap.add_argument("--no-gqa", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "peer_memory.json"))
    a = ap.parse_args()
    shapes = []  # (dtype, D, Hq, Hkv)
    for dt in a.dtypes.split(","):
        for D in (int(x) for x in a.dims.split(",")):
            shapes.append((dt, D, 2048 // D, 2048 // D))
            if D == 128 and not a.no_gqa and dt == "bf16":
                shapes.append((dt, D, 32, 8))
    rows = []
    for dt, D, Hq, Hkv in shapes:
        for N in (int(x) for x in a.lengths.split(",")):
            B = max(1, 16384 // N)
            q = torch.randn(B, Hq, N, D, device="cuda", dtype=DTYPES[dt])
            k, v = (torch.randn(B, Hkv, N, D, device="cuda", dtype=DTYPES[dt]) for _ in range(2))
            input_bytes = sum(t.numel() * t.element_size() for t in (q, k, v))
            for causal in (False, True):
                for impl, backend in BACKENDS.items():
                    row = dict(op="fwd", impl=impl, mask="causal" if causal else "none", dtype=dt, B=B, Hq=Hq,
                               Hkv=Hkv, Sq=N, Sk=N, D=D, Dv=D, density=1.0, ms=None, tflops=None, tbps=None,
                               rel_err=None, peak_mb=None, extra_mb=None, peak_mb_grad=None)
                    try:
                        with sdpa_kernel([backend]):
                            added, out_bytes = added_bytes(q, k, v, causal, Hq != Hkv, grad=False)
                            row.update(peak_mb=round((input_bytes + added) / MB, 1),
                                       extra_mb=round((added - out_bytes) / MB, 2))
                            for t in (q, k, v):
                                t.requires_grad_(True)
                            added_grad, _ = added_bytes(q, k, v, causal, Hq != Hkv, grad=True)
                            row.update(peak_mb_grad=round((input_bytes + added_grad) / MB, 1))
                    except Exception as e:  # the backend refuses this shape
                        row["note"] = (str(e).splitlines() or [type(e).__name__])[0][:120]
                    finally:
                        for t in (q, k, v):
                            t.requires_grad_(False)
                    rows.append(row)
                    print(f"memory  {impl:7s} {dt} D={D:3d} Hq={Hq:2d} Hkv={Hkv:2d} N={N:6d} causal={int(causal)} "
                          f"peak {row['peak_mb']} MB extra {row['extra_mb']} MB (training forward: "
                          f"{row['peak_mb_grad']} MB)" + (f" n/a: {row['note']}" if "note" in row else ""), flush=True)
            del q, k, v
            torch.cuda.empty_cache()
    doc = {"device": torch.cuda.get_device_name(0), "date": datetime.date.today().isoformat(),
           "torch": torch.__version__, "command": "python3 bench/gpu/peer_memory.py", "rows": rows}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote {a.out} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
