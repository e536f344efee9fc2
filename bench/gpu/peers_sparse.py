#!/usr/bin/env python3
"""Peers of omniattn_bench_sparse (suite "sparse"): FlexAttention (torch.compile'd) on the same block masks, and
cuDNN SDPA on the dense rows (none, causal) for scale. Same shapes, same FLOP counts, results schema.

  omniattn_bench_sparse --dump-cases cases.json [--quick]          # the cases, with every block map
  python3 bench/gpu/peers_sparse.py --cases cases.json --out peers_sparse.json [--quick] [--budget 300]
  python3 bench/gpu/peers_sparse.py --cases small.json --dry-run    # CPU: masks vs ours, eager Flex vs SDPA

Same masks: Flex's BlockMask is built with BlockMask.from_kv_blocks from our block map (the same partial and full
blocks), and its mask_mod states our element rule, evaluated on partial blocks: the 1-D rule (window left/right
relative to the diagonal, sinks) or NATTEN's neighborhood through our token order (a tensor inside mask_mod).
Each rule is one mask_mod function whose parameters live in one tensor updated in place, so torch.compile
(dynamic=False) compiles once per shape of q/k/v and of the block mask, not once per pattern.
Timing: triton.testing.do_bench medians (50 ms warm-up, 200 ms of repeats), as ../shared/peers/peers_gpu.py.
FLOPs: 4·D·(visible pairs) x 1 (fwd) or 3.5 (fwd+bwd); tflops_blocks over the listed blocks' area.
--dry-run (no GPU): checks that each mask_mod + block map is our mask (Flex's create_block_mask gives our full
and partial blocks, visible keys per row match ours), that eager Flex with the BlockMask matches SDPA with the
dense mask, then runs the benchmark loop on the CPU (eager, wall clock) to exercise the rows.
"""
import argparse
import datetime
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention


class WindowRule:
    """Our 1-D rule: key j visible to query i iff (right < 0 or j <= i + right) and (left < 0 or j >= i - left or
    j < sinks) (Sq = Sk: the bottom-right diagonal is i). Parameters (left, right, sinks) in one tensor."""

    def __init__(self, device):
        self.p = torch.zeros(3, dtype=torch.int32, device=device)
        p = self.p

        def mask_mod(b, h, q_idx, kv_idx):
            upper = (p[1] < 0) | (kv_idx <= q_idx + p[1])
            lower = (p[0] < 0) | (kv_idx >= q_idx - p[0]) | (kv_idx < p[2])
            return upper & lower

        self.mask_mod = mask_mod

    def set(self, case):
        r = case["rule"]
        self.p.copy_(torch.tensor([r["left"], r["right"], r["sinks"]], dtype=torch.int32))


class GridRule:
    """NATTEN's neighborhood (dilation 1, stride 1, non-causal) on a grid of up to 3 axes, tokens in our order:
    per axis, key coordinate y in [start, start + k) with start = clamp(x - k // 2, 0, L - k). Parameters: the
    token order (position -> grid index) and (L0, L1, L2, k0, k1, k2), leading axes padded with 1."""

    def __init__(self, device, n):
        self.order = torch.zeros(n, dtype=torch.int32, device=device)
        self.g = torch.ones(6, dtype=torch.int32, device=device)
        order, g = self.order, self.g

        def mask_mod(b, h, q_idx, kv_idx):
            qg, kg = order[q_idx], order[kv_idx]
            ok = None
            for a in (2, 1, 0):  # last axis fastest
                length, k = g[a], g[3 + a]
                x, y = qg % length, kg % length
                qg, kg = qg // length, kg // length
                start = torch.minimum(torch.clamp(x - k // 2, min=0), length - k)
                inside = (y >= start) & (y < start + k)
                ok = inside if ok is None else ok & inside
            return ok

        self.mask_mod = mask_mod

    def set(self, case):
        r = case["rule"]
        pad = 3 - len(r["shape"])
        self.order.copy_(torch.tensor(case["order"], dtype=torch.int32))
        self.g.copy_(torch.tensor([1] * pad + r["shape"] + [1] * pad + r["kernel"], dtype=torch.int32))


class Rules:
    """One WindowRule, and one GridRule per token count, per device (the compiled graphs' captured tensors)."""

    def __init__(self, device):
        self.device, self.window, self.grids = device, WindowRule(device), {}

    def mask_mod(self, case):
        if case["rule"]["kind"] == "window":
            rule = self.window
        else:
            rule = self.grids.setdefault(case["N"], GridRule(self.device, case["N"]))
        rule.set(case)
        return rule.mask_mod


def case_map(case, device):
    """Our block map [mask heads, Qb, Kb]: 0 skipped, 1 partial, 2 full."""
    nb = -(-case["N"] // case["block"])
    raw = torch.frombuffer(bytearray(case["map"].encode()), dtype=torch.uint8) - ord("0")
    return raw.view(case["mask_heads"], nb, nb).to(device)


def flex_block_mask(case, mask_mod, device):
    """Flex's BlockMask with exactly our partial and full blocks ([1, mask heads, Qb, Kb]: batch broadcast)."""
    m = case_map(case, device)[None]

    def lists(sel):
        num = sel.sum(-1, dtype=torch.int32)
        idx = torch.argsort((~sel).to(torch.int8), dim=-1, stable=True).to(torch.int32)  # selected first, in order
        return num.contiguous(), idx.contiguous()

    kv_num, kv_idx = lists(m == 1)
    full_num, full_idx = lists(m == 2)
    extra = {} if case["N"] % case["block"] == 0 else {"seq_lengths": (case["N"], case["N"])}
    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=case["block"], mask_mod=mask_mod,
                                    **extra)


def visible_rows(case, mask_mod, h, rows, device):
    """Our visibility of query rows `rows` (int tensor) of query head h: bool [len(rows), N]."""
    n = case["N"]
    q = rows.to(device=device, dtype=torch.int32)[:, None]
    kv = torch.arange(n, device=device, dtype=torch.int32)[None, :]
    if case["kind"] == "dense":
        return torch.ones(len(rows), n, dtype=torch.bool, device=device)
    if case["kind"] == "causal_dense":
        return kv <= q
    mh = 0 if case["mask_heads"] == 1 else h
    state = case_map(case, device)[mh][q.long() // case["block"], kv.long() // case["block"]]
    zero = torch.zeros((), dtype=torch.int32, device=device)
    rule = mask_mod(zero, zero + mh, q, kv)
    return (state == 2) | ((state == 1) & rule)


def sampled_rel_err(case, mask_mod, q, k, v, out, samples=8):
    """||out - ref|| / ||ref|| over sampled rows; ref in float64 with our mask. Layout [B, H, N, D]."""
    g = torch.Generator().manual_seed(4321)
    diff2 = ref2 = 0.0
    for _ in range(samples):
        b = int(torch.randint(q.shape[0], (1,), generator=g))
        h = int(torch.randint(q.shape[1], (1,), generator=g))
        i = int(torch.randint(q.shape[2], (1,), generator=g))
        vis = visible_rows(case, mask_mod, h, torch.tensor([i]), q.device)[0]
        s = (k[b, h].double() @ q[b, h, i].double()) / math.sqrt(q.shape[-1])
        s = s.masked_fill(~vis, float("-inf"))
        p = torch.softmax(s, 0) if bool(vis.any()) else torch.zeros_like(s)
        ref = p @ v[b, h].double()
        diff2 += float(((out[b, h, i].double() - ref) ** 2).sum())
        ref2 += float((ref ** 2).sum())
    return math.sqrt(diff2 / ref2) if ref2 > 0 else math.sqrt(diff2)


def row(case, op, impl, ms, rel_err=None, **extra):
    d, factor = case["D"], 1.0 if op == "fwd" else 3.5
    r = dict(op=op, impl=impl, mask=case["mask"], pattern=case["pattern"], block=case["block"] or None, dtype="bf16",
             B=case["B"], Hq=case["Hq"], Hkv=case["Hkv"], Sq=case["N"], Sk=case["N"], D=d, Dv=d,
             density=case["density"], pair_density=case["pair_density"], listed_blocks=case["listed_blocks"],
             full_blocks=case["full_blocks"], ms=ms, tflops=4.0 * d * case["pairs"] * factor / ms / 1e9,
             tflops_blocks=4.0 * d * case["listed_area"] * factor / ms / 1e9 if case["block"] else None,
             tbps=None, rel_err=rel_err)
    r.update(extra)
    return r


class Bench:
    def __init__(self, a, device):
        self.a, self.device = a, device
        self.rows, self.skipped = [], []
        self.t0 = time.time()
        self.rules = Rules(device)
        self.flex = torch.compile(flex_attention, dynamic=False) if device == "cuda" else flex_attention
        self.dtype = torch.bfloat16 if device == "cuda" else torch.float32
        if device == "cuda":
            from triton.testing import do_bench
            self.ms_of = lambda fn: do_bench(fn, warmup=50, rep=200, return_mode="median")
        else:
            self.ms_of = self.wall_ms
        self.inputs_key, self.inputs = None, None

    @staticmethod
    def wall_ms(fn):
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3

    def skip(self, case, op, impl, reason):
        print(f"skip    {op:8s} {impl:6s} {case['id']:32s} {reason[:300]}", flush=True)
        self.skipped.append(dict(id=case["id"], pattern=case["pattern"], mask=case["mask"], block=case["block"],
                                 N=case["N"], op=op, impl=impl, reason=reason[:1000]))

    def tensors(self, case):
        """q, k, v [B, H, N, D] and dO, random, shared by the cases of one shape."""
        key = (case["B"], case["Hq"], case["N"], case["D"])
        if key != self.inputs_key:
            self.inputs = None
            if self.device == "cuda":
                torch.cuda.empty_cache()
            gen = torch.Generator(device=self.device).manual_seed(7)
            self.inputs = [torch.randn(*key, device=self.device, dtype=self.dtype, generator=gen) for _ in range(4)]
            self.inputs_key = key
        return self.inputs

    def time_ops(self, case, impl, call, check=None, fwd_grad=False, extra=None):
        """call(q, k, v) -> out. Times fwd and fwd+bwd; check(out) -> rel_err of the forward. fwd_grad: the forward
        runs on inputs that require grad (no backward call), so it reuses the fwd+bwd row's compiled graph."""
        try:
            q, k, v, do = self.tensors(case)
            qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
        except Exception as e:
            for op in self.a.ops:
                self.skip(case, op, impl, f"inputs: {type(e).__name__}: {e}")
            return
        for op in self.a.ops:
            if time.time() - self.t0 > self.a.budget:
                self.skip(case, op, impl, f"peer budget of {self.a.budget} s spent")
                continue
            try:
                if op == "fwd" and fwd_grad:
                    def fn():
                        return call(qg, kg, vg).detach()
                elif op == "fwd":
                    def fn():
                        with torch.no_grad():
                            return call(q, k, v)
                else:
                    def fn():
                        return torch.autograd.grad(call(qg, kg, vg), (qg, kg, vg), do)
                start = time.time()
                out = fn()  # compiles on first use
                if self.device == "cuda":
                    torch.cuda.synchronize()
                first_s = time.time() - start
                ms = self.ms_of(fn)
                err = check(out) if (check and op == "fwd") else None
                r = row(case, op, impl, ms, err, first_call_s=round(first_s, 2), **(extra or {}))
                self.rows.append(r)
                print(f"{op:8s} {impl:6s} {case['id']:32s} dens {case['density']:.3f} {ms:9.3f} ms "
                      f"{r['tflops']:7.1f} TFLOP/s " + (f"{r['tflops_blocks']:7.1f} blocks " if r['tflops_blocks'] else "")
                      + (f"rel_err {err:.2e} " if err is not None else "") + f"(first call {first_s:.1f} s)", flush=True)
            except Exception as e:  # a peer that cannot run a case is a skipped entry, not a crash
                self.skip(case, op, impl, f"{type(e).__name__}: {e}")
                if self.device == "cuda":
                    torch.cuda.empty_cache()

    def run_dense(self, case):
        causal = case["kind"] == "causal_dense"
        impl = "cudnn" if self.device == "cuda" else "sdpa_cpu"
        backend = SDPBackend.CUDNN_ATTENTION if self.device == "cuda" else SDPBackend.MATH

        def call(q, k, v):
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        mask_mod = None
        self.time_ops(case, impl, call, lambda out: sampled_rel_err(case, mask_mod, *self.inputs[:3], out))

    def run_flex(self, case):
        try:
            mask_mod = self.rules.mask_mod(case)
            bm = flex_block_mask(case, mask_mod, self.device)
            counts = (int(bm.kv_num_blocks.sum()) + int(bm.full_kv_num_blocks.sum()), int(bm.full_kv_num_blocks.sum()))
            if counts != (case["listed_blocks"], case["full_blocks"]):
                raise RuntimeError(f"Flex BlockMask lists {counts} (listed, full) blocks, ours {case['listed_blocks']}, "
                                   f"{case['full_blocks']}")
        except Exception as e:
            for op in self.a.ops:
                self.skip(case, op, "flex", f"mask: {type(e).__name__}: {e}")
            return

        def make_call(options):
            return lambda q, k, v: self.flex(q, k, v, block_mask=bm, kernel_options=options)

        # Blocks under 128 tokens: Flex's default tiles may exceed them (releases differ); if its defaults fail on a
        # probe (fwd + bwd once, compiled and cached for the timing), tiles of the block's size.
        candidates = [None]
        if self.device == "cuda" and case["block"] < 128:
            candidates.append({key: case["block"] for key in ("BLOCK_M", "BLOCK_N", "BLOCK_M1", "BLOCK_N1", "BLOCK_M2",
                                                              "BLOCK_N2")})
        errors = []
        for options in candidates:
            call = make_call(options)
            if len(candidates) == 1:
                break
            try:
                q, k, v, do = self.tensors(case)
                qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
                torch.autograd.grad(call(qg, kg, vg), (qg, kg, vg), do)
                torch.cuda.synchronize()
                break
            except Exception as e:
                errors.append(f"kernel_options={options}: {type(e).__name__}: {e}"[:400])
        else:
            for op in self.a.ops:
                self.skip(case, op, "flex", "; ".join(errors))
            return
        self.time_ops(case, "flex", call, lambda out: sampled_rel_err(case, mask_mod, *self.inputs[:3], out),
                      fwd_grad=self.device == "cuda" and not self.a.flex_fwd_nograd,
                      extra={"kernel_options": options} if options else {})

    def run(self, cases, save):
        # Most wanted first, so that a spent budget costs the least: cuDNN's dense rows (no compile), then the
        # 128-token blocks at 16k (every pattern), 32k, 8k, then the 64-token blocks.
        def priority(c):
            return (c["kind"] not in ("dense", "causal_dense"), c["block"] not in (0, 128),
                    {16384: 0, 32768: 1}.get(c["N"], 2))

        for case in sorted(cases, key=priority):
            (self.run_dense if case["kind"] in ("dense", "causal_dense") else self.run_flex)(case)
            save()


def dry_run_checks(cases):
    """CPU: each peer mask against ours. Returns the number of failures."""
    failures, compiled = 0, None
    rules = Rules("cpu")
    for case in cases:
        if case["kind"] in ("dense", "causal_dense"):
            continue
        n, blk, problems = case["N"], case["block"], []
        mask_mod = rules.mask_mod(case)
        ours = case_map(case, "cpu")
        rows = torch.arange(n)
        vis = visible_rows(case, mask_mod, 0, rows, "cpu")  # our block map + rule, head 0
        if "row_pairs" in case and vis.sum(1).tolist() != case["row_pairs"]:
            problems.append("visible keys per row differ from omniattn's row_pairs")
        if case["kind"] != "random":  # the block map is the rule's own: Flex must find the same blocks
            zero = torch.zeros((), dtype=torch.int32)
            dense = mask_mod(zero, zero, rows.int()[:, None], rows.int()[None, :])
            if not torch.equal(dense, vis):
                problems.append(f"mask_mod differs from our mask on {int((dense != vis).sum())} pairs")
            bm = create_block_mask(mask_mod, None, None, n, n, device="cpu", BLOCK_SIZE=blk)
            nb = -(-n // blk)

            def dense_of(num, idx):
                valid = (torch.arange(idx.shape[-1]) < num[..., None]).int()
                return torch.zeros(*idx.shape[:-1], nb, dtype=torch.int32).scatter_add_(-1, idx.long(), valid) > 0

            flex_partial = dense_of(bm.kv_num_blocks, bm.kv_indices)[0, 0]
            flex_full = dense_of(bm.full_kv_num_blocks, bm.full_kv_indices)[0, 0]
            if not (torch.equal(flex_partial, ours[0] == 1) and torch.equal(flex_full, ours[0] == 2)):
                problems.append("create_block_mask's partial/full blocks differ from ours")
        # Flex with the BlockMask the GPU run uses, against SDPA with the dense mask (all mask heads). Eager Flex
        # evaluates mask_mod on every pair and ignores the block lists: random maps need the compiled kernel.
        heads, d = case["Hq"], 16
        gen = torch.Generator().manual_seed(3)
        q, k, v = (torch.randn(1, heads, n, d, generator=gen) for _ in range(3))
        bm = flex_block_mask(case, mask_mod, "cpu")
        if case["kind"] == "random" and compiled is None:
            compiled = torch.compile(flex_attention, dynamic=False)
        out = (compiled if case["kind"] == "random" else flex_attention)(q, k, v, block_mask=bm)
        dense_mask = torch.stack([visible_rows(case, mask_mod, h, rows, "cpu") for h in range(heads)])[None]
        ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=dense_mask)
        err = float((out.double() - ref).norm() / ref.norm())
        if not err < 1e-5:
            problems.append(f"eager Flex vs SDPA rel_err {err:.2e}")
        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print(f"dry-run {case['id']:36s} pairs {int(vis.sum())} flex-vs-sdpa {err:.1e}  {status}", flush=True)
        failures += bool(problems)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", required=True, help="omniattn_bench_sparse --dump-cases output")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "peers_sparse.json"))
    ap.add_argument("--ops", default="fwd,fwd+bwd")
    ap.add_argument("--quick", action="store_true", help="128-token blocks at one N (16k or the middle length)")
    ap.add_argument("--budget", type=float, default=300, help="seconds; later rows are skipped with a note")
    ap.add_argument("--dry-run", action="store_true", help="CPU: mask checks + the loop with eager Flex")
    ap.add_argument("--flex-fwd-nograd", action="store_true",
                    help="time Flex's forward under no_grad (its own compiled graph) instead of on inputs that require "
                         "grad (the fwd+bwd row's graph: half the compiles)")
    a = ap.parse_args()
    a.ops = a.ops.split(",")
    with open(a.cases) as f:
        cases = json.load(f)["cases"]
    if a.quick:
        lengths = sorted({c["N"] for c in cases if c["kind"] != "grid"})
        keep = 16384 if 16384 in lengths else lengths[len(lengths) // 2] if lengths else None
        cases = [c for c in cases if c["block"] in (0, 128) and (c["kind"] == "grid" or c["N"] == keep)]
    for name in ("cache_size_limit", "recompile_limit"):  # one compiled graph per shape: more than the default 8
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    device = "cpu" if a.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("peers_sparse: no CUDA device (torch.cuda.is_available() is False); --dry-run runs on the CPU")
    if a.dry_run:  # the loop on the CPU: one case per kind but random (eager Flex ignores blocks), B = 1, D = 16
        first = {}
        for c in cases:
            first.setdefault(c["kind"], dict(c, B=1, D=16, pairs=c["pairs"] / c["B"], listed_area=c["listed_area"] / c["B"]))
        cases_run = [c for kind, c in first.items() if kind != "random"]
    else:
        cases_run = cases
    failures = dry_run_checks(cases) if a.dry_run else 0
    bench = Bench(a, device)

    def save():
        doc = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)",
               "date": datetime.date.today().isoformat(), "torch": torch.__version__,
               "command": "python3 bench/gpu/peers_sparse.py " + " ".join(sys.argv[1:]),
               "skipped": bench.skipped, "rows": bench.rows}
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)

    print(f"peers_sparse: {len(cases_run)} cases on {device}, ops {','.join(a.ops)}, budget {a.budget:.0f} s", flush=True)
    bench.run(cases_run, save)
    print(f"wrote {a.out} ({len(bench.rows)} rows, {len(bench.skipped)} skipped) in {time.time() - bench.t0:.0f} s")
    if failures:
        print(f"dry-run: {failures} mask check(s) FAILED")
        sys.exit(1)


if __name__ == "__main__":
    main()
