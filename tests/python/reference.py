"""Float64 reference attention written in torch for the Python tests, and the tolerance rule.

Independent of the library: naive softmax(mask(softcap(scale·QKᵀ)) − ALiBi)·V per the documented semantics
(bottom-right diagonal, window, sinks, sink logits, an optional dense element mask standing for a block mask;
rows with no visible key give 0 and LSE −inf); decode on K/V gathered from a (paged) cache; rotary embedding.
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


def expand_mask(mask: torch.Tensor, b: int, hq: int) -> torch.Tensor:
    """A dense element mask [Sq, Sk] or [batch (1 or B), mask heads (1, Hkv or Hq), Sq, Sk] as [B, Hq, Sq, Sk]:
    query head h uses mask head h // (Hq / mask heads), as a BlockMask's heads."""
    mask = torch.as_tensor(mask)
    if mask.dim() == 2:
        mask = mask[None, None]
    mask = mask.repeat_interleave(hq // mask.shape[1], dim=1)
    return mask.expand(b, hq, *mask.shape[2:])


def attention_ref(q, k, v, *, causal=False, window=(-1, -1), sinks=0, softcap=0.0, alibi_slopes=None,
                  sink_logits=None, scale=None, mask=None, dtype=torch.float64):
    """Batched [B, S, H, D] attention computed in `dtype` (float64: the oracle; the input dtype: the naive
    same-precision implementation of the tolerance rule). `mask`: a dense element mask ANDed with the others
    (expand_mask). Returns (out [B, Sq, Hq, Dv], lse [B, Hq, Sq])."""
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
    keep = visible(sq, sk, causal, window, sinks, q.device)
    if mask is not None:
        keep = keep & expand_mask(mask, b, hq).to(q.device)
    s = s.masked_fill(~keep, float("-inf"))
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


def gather_cache(cache: torch.Tensor, length: int, table_row=None) -> torch.Tensor:
    """The first `length` tokens [1, length, H, D] of one sequence: a contiguous row [capacity, H, D], or pages
    [num_pages, page_size, H, D] through its block-table row."""
    if table_row is None:
        return cache[None, :length]
    j = torch.arange(length, device=cache.device)
    pages = torch.as_tensor(table_row, device=cache.device).long()[j // cache.shape[1]]
    return cache[pages, j % cache.shape[1]][None]


def decode_ref(q, k_cache, v_cache, seq_lens, block_table=None, dtype=torch.float64, **opts):
    """Decode per sequence: q [B, Sq, Hq, D] are the newest Sq tokens of sequence b's seq_lens[b] keys (contiguous
    k_cache [B, capacity, ...] or pages with block_table). Returns (out, lse [B, Hq, Sq])."""
    outs, lses = [], []
    for b, n in enumerate(torch.as_tensor(seq_lens).tolist()):
        row = None if block_table is None else block_table[b]
        cache_k = k_cache[b] if block_table is None else k_cache
        cache_v = v_cache[b] if block_table is None else v_cache
        o, l = attention_ref(q[b:b + 1], gather_cache(cache_k, n, row), gather_cache(cache_v, n, row), dtype=dtype,
                             **opts)
        outs.append(o)
        lses.append(l)
    return torch.cat(outs), torch.cat(lses)


def rotary_ref(x, cos, sin, positions, interleaved: bool, dtype=torch.float64):
    """x [B, S, H, D] rotated per token: pair (a, b) of the first 2·cos.shape[1] dims at position p becomes
    (a cos - b sin, a sin + b cos); pairs (2i, 2i+1) when interleaved, else (i, i + rotary_dim/2)."""
    half = cos.shape[1]
    out = x.to(dtype).clone()
    c = cos.to(dtype)[positions][:, :, None, :]
    s = sin.to(dtype)[positions][:, :, None, :]
    idx = torch.arange(half)
    first, second = (2 * idx, 2 * idx + 1) if interleaved else (idx, idx + half)
    a, b = out[..., first].clone(), out[..., second].clone()
    out[..., first] = a * c - b * s
    out[..., second] = a * s + b * c
    return out


def rounding_term(ref: torch.Tensor, dtype: torch.dtype) -> float:
    """Twice the error of rounding the float64 result to `dtype` at magnitude |ref| + 0.3 (flash-attn's)."""
    ref = ref.detach()[torch.isfinite(ref.detach())].to(torch.float64)
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
