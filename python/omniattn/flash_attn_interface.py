"""Drop-in replacement for flash-attn 2.x's ``flash_attn.flash_attn_interface`` (torch tensors).

    from omniattn.flash_attn_interface import flash_attn_func   # instead of: from flash_attn import ...

Same signatures, layouts and semantics (bottom-right causal, window_size, softcap, ALiBi, GQA, varlen,
deterministic backward, LSE as (nheads, total_q) for varlen). What cannot be honoured raises
NotImplementedError: dropout_p > 0, paged KV (block_table), rotary embedding and cache_leftpad in
flash_attn_with_kvcache. ``return_attn_probs=True`` returns (out, softmax_lse, None): the LSE as flash-attn,
and None where flash-attn returns its test-only probability matrix.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from ._api import attention

__all__ = ["flash_attn_func", "flash_attn_qkvpacked_func", "flash_attn_kvpacked_func", "flash_attn_varlen_func",
           "flash_attn_varlen_qkvpacked_func", "flash_attn_varlen_kvpacked_func", "flash_attn_with_kvcache"]


def _no_dropout(dropout_p: float) -> None:
    if dropout_p > 0.0:
        raise NotImplementedError(f"dropout_p: omniattn has no attention dropout; expected 0.0, given {dropout_p}")


def _run(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
         return_attn_probs, cu_seqlens_q=None, cu_seqlens_k=None):
    _no_dropout(dropout_p)
    out, lse = attention(q, k, v, causal=causal, window=tuple(window_size), softcap=softcap,
                         alibi_slopes=alibi_slopes, scale=softmax_scale, cu_seqlens_q=cu_seqlens_q,
                         cu_seqlens_k=cu_seqlens_k, deterministic=deterministic, return_lse=True)
    return (out, lse, None) if return_attn_probs else out


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                    alibi_slopes=None, deterministic=False, return_attn_probs=False):
    """q (B, Sq, Hq, D), k (B, Sk, Hkv, D), v (B, Sk, Hkv, Dv) -> out (B, Sq, Hq, Dv)."""
    return _run(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
                return_attn_probs)


def flash_attn_qkvpacked_func(qkv, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                              softcap=0.0, alibi_slopes=None, deterministic=False, return_attn_probs=False):
    """qkv (B, S, 3, H, D) -> out (B, S, H, D). The three views cross zero-copy (strided)."""
    q, k, v = qkv.unbind(2)
    return _run(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
                return_attn_probs)


def flash_attn_kvpacked_func(q, kv, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                             softcap=0.0, alibi_slopes=None, deterministic=False, return_attn_probs=False):
    """q (B, Sq, Hq, D), kv (B, Sk, 2, Hkv, D) -> out (B, Sq, Hq, D)."""
    k, v = kv.unbind(2)
    return _run(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
                return_attn_probs)


def _no_paging(block_table) -> None:
    if block_table is not None:
        raise NotImplementedError("block_table: paged KV caches are not yet available from Python")


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                           softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                           deterministic=False, return_attn_probs=False, block_table=None):
    """q (total_q, Hq, D), k/v (total_k, Hkv, D), cu_seqlens int32 (B+1,). max_seqlen_* are accepted and
    unused (the library reads the lengths from cu_seqlens). LSE: (Hq, total_q)."""
    _no_paging(block_table)
    return _run(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
                return_attn_probs, cu_seqlens_q, cu_seqlens_k)


def flash_attn_varlen_qkvpacked_func(qkv, cu_seqlens, max_seqlen, dropout_p=0.0, softmax_scale=None, causal=False,
                                     window_size=(-1, -1), softcap=0.0, alibi_slopes=None, deterministic=False,
                                     return_attn_probs=False):
    """qkv (total, 3, H, D) -> out (total, H, D)."""
    q, k, v = qkv.unbind(1)
    return _run(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
                return_attn_probs, cu_seqlens, cu_seqlens)


def flash_attn_varlen_kvpacked_func(q, kv, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                                    softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                                    alibi_slopes=None, deterministic=False, return_attn_probs=False):
    """q (total_q, Hq, D), kv (total_k, 2, Hkv, D) -> out (total_q, Hq, D)."""
    k, v = kv.unbind(1)
    return _run(q, k, v, dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
                return_attn_probs, cu_seqlens_q, cu_seqlens_k)


def _append_to_cache(k_cache, v_cache, k, v, cache_seqlens, batch_idx):
    """Writes k/v (B, Snew, Hkv, D) into the caches at rows cache_seqlens[b].., in place."""
    new = k.shape[1]
    if not torch.compiler.is_compiling() and bool((cache_seqlens + new > k_cache.shape[1]).any()):
        raise ValueError(f"k: expected the cache (seqlen {k_cache.shape[1]}) to hold cache_seqlens + {new} "
                         f"new tokens, given cache_seqlens {cache_seqlens.tolist()}")
    rows = cache_seqlens.to(torch.long)[:, None] + torch.arange(new, device=k.device)  # (B, Snew)
    k_cache[batch_idx[:, None], rows] = k
    v_cache[batch_idx[:, None], rows] = v


@torch.no_grad()
def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None, rotary_sin=None,
                            cache_seqlens=None, cache_batch_idx=None, cache_leftpad=None, block_table=None,
                            softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                            rotary_interleaved=True, alibi_slopes=None, num_splits=0, return_softmax_lse=False):
    """Attention of q (B, Sq, Hq, D) over a contiguous KV cache (B_cache, S_cache, Hkv, D), after appending
    k/v (B, Snew, Hkv, D) in place at cache_seqlens (int or int32 (B,)). Keys past cache_seqlens (+ Snew)
    are ignored; causal is aligned to the end of each sequence's keys. num_splits is a performance hint and
    ignored. No backward (as flash-attn)."""
    _no_paging(block_table)
    if rotary_cos is not None or rotary_sin is not None:
        raise NotImplementedError("rotary_cos/rotary_sin: rotary embedding inside flash_attn_with_kvcache is "
                                  "not supported; rotate q and k before the call")
    if cache_leftpad is not None:
        raise NotImplementedError("cache_leftpad: left-padded KV caches are not supported")
    if (k is None) != (v is None):
        raise ValueError("k, v: expected both or neither, given only one")
    batch = q.shape[0]
    if isinstance(cache_seqlens, int):
        cache_seqlens = torch.full((batch,), cache_seqlens, dtype=torch.int32, device=q.device)
    if k is not None and cache_seqlens is None:
        raise ValueError("cache_seqlens: expected the cache lengths where k, v are appended, given None")
    batch_idx = (torch.arange(batch, device=q.device) if cache_batch_idx is None
                 else cache_batch_idx.to(torch.long))
    if k is not None:
        _append_to_cache(k_cache, v_cache, k, v, cache_seqlens, batch_idx)
    # The selected cache rows: zero-copy without cache_batch_idx, a gather with it.
    keys = k_cache if cache_batch_idx is None else k_cache[batch_idx]
    values = v_cache if cache_batch_idx is None else v_cache[batch_idx]
    seqused = None
    if cache_seqlens is not None:
        seqused = cache_seqlens + (0 if k is None else k.shape[1])
    out, lse = torch.ops.omniattn.fwd(q, keys, values, None if alibi_slopes is None else alibi_slopes.float(), None,
                                      None, None, None if seqused is None else seqused.to(torch.int32), causal,
                                      int(window_size[0]), int(window_size[1]), 0, float(softcap),
                                      None if softmax_scale is None else float(softmax_scale), "auto", False)
    return (out, lse) if return_softmax_lse else out
