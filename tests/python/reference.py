"""Float64 reference attention written in torch for the Python tests, and the tolerance rule.

Independent of the library: naive softmax(mask(softcap(scale·QKᵀ)) − ALiBi)·V per the documented semantics
(bottom-right diagonal, window, sinks, sink logits; rows with no visible key give 0 and LSE −inf).
"""
from __future__ import annotations

import math

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def visible(sq: int, sk: int, causal: bool, window=(-1, -1), sinks: int = 0, device=None) -> torch.Tensor:
    """(sq, sk) bool: key j visible to query i."""
    left, right = window
    if causal:
        right = 0
    i = torch.arange(sq, device=device)[:, None]
    j = torch.arange(sk, device=device)[None, :]
    diag = i + sk - sq
    ok = torch.ones(sq, sk, dtype=torch.bool, device=device)
    if right >= 0:
        ok &= j <= diag + right
    if left >= 0:
        ok &= (j >= diag - left) | (j < sinks)
    return ok


def attention_ref(q, k, v, *, causal=False, window=(-1, -1), sinks=0, softcap=0.0, alibi_slopes=None,
                  sink_logits=None, scale=None, dtype=torch.float64):
    """Batched [B, S, H, D] attention computed in `dtype` (float64: the oracle; the input dtype: the naive
    same-precision implementation of the tolerance rule). Returns (out [B, Sq, Hq, Dv], lse [B, Hq, Sq])."""
    b, sq, hq, d = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    q, k, v = (t.to(dtype) for t in (q, k, v))
    k = k.repeat_interleave(hq // hkv, dim=2)
    v = v.repeat_interleave(hq // hkv, dim=2)
    s = torch.einsum("bihd,bjhd->bhij", q, k) * scale  # (B, Hq, Sq, Sk)
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if alibi_slopes is not None:
        slopes = alibi_slopes.to(dtype).reshape(-1, hq, 1, 1) if alibi_slopes.dim() == 2 else \
            alibi_slopes.to(dtype).reshape(1, hq, 1, 1)
        i = torch.arange(sq, device=q.device)[:, None]
        j = torch.arange(sk, device=q.device)[None, :]
        s = s - slopes * (i + sk - sq - j).abs().to(dtype)
    mask = visible(sq, sk, causal, window, sinks, q.device)
    s = s.masked_fill(~mask, float("-inf"))
    if sink_logits is not None:
        sink = sink_logits.to(dtype).reshape(1, hq, 1, 1).expand(b, hq, sq, 1)
        s = torch.cat([s, sink], dim=-1)
    lse = torch.logsumexp(s, dim=-1)  # (B, Hq, Sq)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)  # rows with no visible key: 0
    if sink_logits is not None:
        p = p[..., :-1]
    out = torch.einsum("bhij,bjhd->bihd", p.to(dtype), v)
    return out, lse


def varlen_ref(q, k, v, cu_q, cu_k, **kw):
    """Varlen [total, H, D] attention: the batched reference per sequence. Returns (out, lse [Hq, total_q])."""
    outs, lses = [], []
    for b in range(len(cu_q) - 1):
        qs, ks = slice(int(cu_q[b]), int(cu_q[b + 1])), slice(int(cu_k[b]), int(cu_k[b + 1]))
        o, l = attention_ref(q[qs][None], k[ks][None], v[ks][None], **kw)
        outs.append(o[0])
        lses.append(l[0])
    return torch.cat(outs, 0), torch.cat(lses, 1)


def rounding_term(ref: torch.Tensor, dtype: torch.dtype) -> float:
    """Twice the error of rounding the float64 result to `dtype` at magnitude |ref| + 0.3 (flash-attn's)."""
    ref = ref[torch.isfinite(ref)].to(torch.float64)
    if ref.numel() == 0:
        return 0.0
    off = torch.where(ref < 0, -0.3, 0.3).to(torch.float64)
    r = ((ref + off).to(dtype).to(torch.float64) - off).to(dtype).to(torch.float64)
    return 2 * float((r - ref).abs().max())


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    same = a == b  # equal infinities (LSE of empty rows) count as exact
    d = (a - b).abs().masked_fill(same, 0.0)
    return float("inf") if torch.isnan(d).any() else float(d.max()) if d.numel() else 0.0


def assert_close(ours, naive, ref64, dtype, what: str, f32_floor: float = 2e-6) -> None:
    """FlashAttention's rule: err(ours) <= 2 * err(same-precision naive) + rounding term, against float64.

    float32 also gets the floor f32_floor * (1 + max|ref|) of the C++ tests (tests/test_cpu_attention.cpp):
    nothing is rounded to a coarse dtype there, so ours and the naive are both f32 accumulation noise, and
    torch's blocked f32 matmuls make the naive's max error a few ulps by chance. Bugs are far above it.
    """
    err, naive_err = max_err(ours, ref64), max_err(naive, ref64)
    bound = 2 * naive_err + rounding_term(ref64, dtype)
    if dtype == torch.float32:
        finite = ref64.detach()[torch.isfinite(ref64.detach())]
        ref_max = float(finite.abs().max()) if finite.numel() else 0.0
        bound = max(bound, f32_floor * (1.0 + ref_max))
    assert err <= bound, f"{what}: max |ours - f64| = {err:.3g} > bound {bound:.3g} (naive error {naive_err:.3g})"
