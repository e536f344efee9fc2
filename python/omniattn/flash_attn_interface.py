"""Drop-in replacement for flash-attn 2.x's ``flash_attn.flash_attn_interface`` (torch tensors).

    from omniattn.flash_attn_interface import flash_attn_func   # instead of: from flash_attn import ...

Same signatures, layouts and semantics (bottom-right causal, window_size, softcap, ALiBi, GQA, varlen,
deterministic backward, LSE as (nheads, total_q) for varlen; flash_attn_with_kvcache with paged KV and rotary
embedding, flash_attn_varlen_func with paged KV). What cannot be honoured raises NotImplementedError:
dropout_p > 0, cache_leftpad in flash_attn_with_kvcache. ``return_attn_probs=True`` returns (out, softmax_lse, None): the LSE as flash-attn,
and None where flash-attn returns its test-only probability matrix.
"""
from __future__ import annotations

from ._api import attention
from ._kvcache_compat import flash_attn_with_kvcache

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


def _packed_from_pages(pages, block_table, cu_seqlens_k):
    """The keys of every sequence packed as (total_k, H, D) from pages (num_pages, page_size, H, D): key t of
    sequence b is slot t % page_size of page block_table[b, t // page_size]. A gather (a copy), differentiable."""
    import torch

    cu = cu_seqlens_k.long()
    total = int(cu[-1])  # one device-to-host copy: the packed length
    seq = torch.repeat_interleave(torch.arange(len(cu) - 1, device=cu.device), cu.diff(), output_size=total)
    pos = torch.arange(total, device=cu.device) - cu[seq]
    page = block_table.long()[seq, pos // pages.shape[1]]
    return pages[page, pos % pages.shape[1]]


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                           softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                           deterministic=False, return_attn_probs=False, block_table=None):
    """q (total_q, Hq, D), k/v (total_k, Hkv, D), cu_seqlens int32 (B+1,). max_seqlen_* are accepted and
    unused (the library reads the lengths from cu_seqlens). LSE: (Hq, total_q). With block_table (B, max_pages),
    k/v are pages (num_pages, page_size, Hkv, D) (paged KV, any page size): gathered into packed keys first."""
    if block_table is not None:
        k, v = (_packed_from_pages(t, block_table, cu_seqlens_k) for t in (k, v))
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
