"""omniattn.attention_decode and omniattn.kv_cache_append: decoding against a (paged) KV cache
(include/omniattn/decode.hpp, kv_cache.hpp), for torch tensors (custom ops, torch.compile) and numpy arrays.

Cache layouts: contiguous k_cache [B, capacity, Hkv, D], or paged (vLLM's) pages [num_pages, page_size, Hkv, D]
with block_table int32 [B, max_pages]: token j of sequence b is slot j % page_size of page block_table[b, j //
page_size]. cache_seqlens int32 [B]: tokens held by each sequence.
"""
from __future__ import annotations

from typing import Optional, Sequence

from . import _C
from ._frameworks import back_to, framework_of, numpy_inner_contiguous, to_framework, torch, uses_torch


def _window(window: Sequence[int]):
    if len(window) != 2:
        raise ValueError(f"window: expected (left, right) with -1 for unbounded, given {window!r}")
    return int(window[0]), int(window[1])


def _lengths(cache_seqlens, batch: int, like, use_torch: bool):
    """cache_seqlens as an int32 array on like's device; an int becomes a full array."""
    if use_torch:
        if isinstance(cache_seqlens, int):
            return torch.full((batch,), cache_seqlens, dtype=torch.int32, device=like.device)
        return torch.as_tensor(cache_seqlens, device=like.device).to(torch.int32)
    import numpy as np

    if isinstance(cache_seqlens, int):
        return np.full((batch,), cache_seqlens, dtype=np.int32)
    return np.ascontiguousarray(cache_seqlens, dtype=np.int32)


def attention_decode(q, k_cache, v_cache, cache_seqlens, block_table=None, *, causal: bool = False,
                     window: Sequence[int] = (-1, -1), sinks: int = 0, softcap: float = 0.0, alibi_slopes=None,
                     sink_logits=None, scale: Optional[float] = None, return_lse: bool = False,
                     backend: str = "auto", schedule: str = "auto", num_splits: int = 0, num_ctas: int = 0,
                     host_seqlens=None, host_block_table=None):
    """Attention of q [B, Sq, Hq, D] (Sq 1 to 16) against the first cache_seqlens[b] keys of each sequence.

    The Sq queries are the newest tokens, already in the cache (kv_cache_append first): query i of sequence b
    sits at position cache_seqlens[b] - Sq + i, so `causal` is the bottom-right rule. Every score option of
    attention() applies. `schedule` ('auto', 'no_split', 'split_kv', 'stream_k'), `num_splits` and `num_ctas`
    tune the key split. CUDA caches: `host_seqlens` (a CPU copy of cache_seqlens) saves the device-to-host copy
    the scheduler needs; `host_block_table` (a CPU copy of block_table) makes bad page ids a ValueError before
    anything runs (without it the kernel writes NaN to the rows of a sequence with a bad id). Returns out
    [B, Sq, Hq, Dv] (and lse f32 [B, Hq, Sq]). No autograd.
    """
    left, right = _window(window)
    framework, use_torch = framework_of(q), uses_torch(q)
    q, k_cache, v_cache, block_table, alibi_slopes, sink_logits = (
        to_framework(t, use_torch, n) for t, n in ((q, "q"), (k_cache, "k_cache"), (v_cache, "v_cache"),
                                                   (block_table, "block_table"), (alibi_slopes, "alibi_slopes"),
                                                   (sink_logits, "sink_logits")))
    lens = _lengths(cache_seqlens, q.shape[0], q, use_torch)
    scale = None if scale is None else float(scale)
    if use_torch and isinstance(cache_seqlens, int) and q.is_cuda and host_seqlens is None:
        host_seqlens = torch.full((q.shape[0],), cache_seqlens, dtype=torch.int32)  # known here: no device copy
    if use_torch:
        i32 = lambda t: None if t is None else t.to(torch.int32)
        f32 = lambda t: None if t is None else t.to(torch.float32)
        out, lse = torch.ops.omniattn.decode(q, k_cache, v_cache, lens, i32(block_table), f32(alibi_slopes),
                                             f32(sink_logits), i32(host_seqlens), i32(host_block_table), causal,
                                             left, right, int(sinks), float(softcap), scale, backend, schedule,
                                             int(num_splits), int(num_ctas))
    else:
        import numpy as np

        q = numpy_inner_contiguous(q)
        out = np.empty((*q.shape[:-1], v_cache.shape[-1]), dtype=q.dtype)
        lse = np.empty((q.shape[0], q.shape[2], q.shape[1]), dtype=np.float32)
        i32 = lambda a: None if a is None else np.ascontiguousarray(a, dtype=np.int32)
        f32 = lambda a: None if a is None else np.ascontiguousarray(a, dtype=np.float32)
        _C.decode(q, k_cache, v_cache, lens, i32(block_table), out, lse, causal=causal, window_left=left,
                  window_right=right, sinks=int(sinks), softcap=float(softcap), scale=scale,
                  alibi_slopes=f32(alibi_slopes), sink_logits=f32(sink_logits), backend=backend, schedule=schedule,
                  num_splits=int(num_splits), num_ctas=int(num_ctas))
    out, lse = back_to(framework, out), back_to(framework, lse)
    return (out, lse) if return_lse else out


def kv_cache_append(k_cache, v_cache, k, v, cache_seqlens, block_table=None, *, rotary_cos=None, rotary_sin=None,
                    rotary_interleaved: bool = False, q=None, advance: bool = True, host_seqlens=None,
                    host_block_table=None) -> None:
    """Writes k [B, Sn, Hkv, D] / v [B, Sn, Hkv, Dv] into the caches in place, token t of sequence b at position
    cache_seqlens[b] + t (int32 [B]), then (advance=True) adds Sn to cache_seqlens in place (and to
    host_seqlens). With rotary_cos/rotary_sin [max_positions, rotary_dim / 2], k is rotated at those positions on
    the way in, and q [B, Sn, Hq, D] (when given) in place with the same positions; rotary_interleaved selects
    GPT-J pairs (2i, 2i+1) instead of GPT-NeoX halves (i, i + rotary_dim/2). Raises (writing nothing) when a
    sequence would exceed the cache or a page id it needs is out of range (on the host copy of the table).
    """
    use_torch = uses_torch(k_cache)
    names = ("k_cache", "v_cache", "k", "v", "cache_seqlens", "block_table", "rotary_cos", "rotary_sin", "q")
    k_cache, v_cache, k, v, lens, block_table, rotary_cos, rotary_sin, q = (
        to_framework(t, use_torch, n) for t, n in zip((k_cache, v_cache, k, v, cache_seqlens, block_table,
                                                        rotary_cos, rotary_sin, q), names))
    if (rotary_cos is None) != (rotary_sin is None):
        raise ValueError("rotary_cos, rotary_sin: expected both or neither, given one")
    if use_torch:
        if lens.dtype != torch.int32:
            raise TypeError(f"cache_seqlens: expected an int32 tensor (it is advanced in place), given {lens.dtype}")
        f32 = lambda t: None if t is None else t.to(torch.float32).contiguous()
        i32 = lambda t: None if t is None else t.to(torch.int32)
        torch.ops.omniattn.kv_append(k_cache, v_cache, lens, k, v, i32(block_table), f32(rotary_cos),
                                     f32(rotary_sin), rotary_interleaved, q, advance, host_seqlens,
                                     i32(host_block_table))
        return
    import numpy as np

    f32 = lambda a: None if a is None else np.ascontiguousarray(a, dtype=np.float32)
    _C.kv_cache_append(k_cache, v_cache, lens, numpy_inner_contiguous(k), numpy_inner_contiguous(v),
                       None if block_table is None else np.ascontiguousarray(block_table, dtype=np.int32),
                       rotary_cos=f32(rotary_cos), rotary_sin=f32(rotary_sin), interleaved=rotary_interleaved, q=q,
                       advance_lengths=advance)
