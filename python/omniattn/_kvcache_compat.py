"""flash-attn 2.x's ``flash_attn_with_kvcache`` on omniattn's decode path (kv_cache_append + attention_decode).

flash-attn semantics kept: k/v are appended in place at cache_seqlens (which is not modified); rotary embedding
rotates the new k at positions cache_seqlens, cache_seqlens + 1, ... and q at the same positions when causal or
local, else every query at position cache_seqlens; causal is bottom-right aligned to cache_seqlens + Snew keys.
"""
from __future__ import annotations

import torch

_MAX_DECODE_QUERIES = 16  # attention_decode's limit; longer q (chunked prefill) uses the forward kernel


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
           interleaved: bool) -> torch.Tensor:
    """x [B, S, H, D] with its first rotary_dim = 2·cos.shape[1] dims rotated at positions [B, S] (f32 math)."""
    half = cos.shape[1]
    c, s = cos[positions][:, :, None, :], sin[positions][:, :, None, :]  # (B, S, 1, rotary_dim / 2)
    xr = x[..., : 2 * half].float()
    x0, x1 = (xr[..., 0::2], xr[..., 1::2]) if interleaved else (xr[..., :half], xr[..., half:])
    y0, y1 = x0 * c - x1 * s, x0 * s + x1 * c
    y = torch.stack((y0, y1), dim=-1).flatten(-2) if interleaved else torch.cat((y0, y1), dim=-1)
    return torch.cat((y.to(x.dtype), x[..., 2 * half:]), dim=-1)


def _table(block_table, cache_batch_idx, batch: int):
    """The cache as a page pool: the block table, or cache_batch_idx as one page (a whole cache row) per sequence."""
    if block_table is not None:
        if cache_batch_idx is not None:
            raise NotImplementedError("cache_batch_idx: not supported with block_table (as in flash-attn)")
        return block_table.to(torch.int32)
    if cache_batch_idx is not None:
        return cache_batch_idx.to(torch.int32).reshape(batch, 1)
    return None


def _lengths(cache_seqlens, batch: int, device: torch.device):
    """(lengths int32 [B] on the device, their host copy for a CUDA cache or None): one copy, not one per call."""
    if isinstance(cache_seqlens, int):
        lens = torch.full((batch,), cache_seqlens, dtype=torch.int32, device=device)
        host = torch.full((batch,), cache_seqlens, dtype=torch.int32) if device.type == "cuda" else None
        return lens, host
    lens = cache_seqlens.to(device=device, dtype=torch.int32)
    return lens, (lens.cpu() if device.type == "cuda" else None)


def _gather(cache: torch.Tensor, table: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """[B, max_pages·page_size, H, D]: the pages of each sequence in order (the fallback for long q)."""
    pages = cache.shape[0]
    needed = torch.arange(table.shape[1], device=table.device)[None, :] * cache.shape[1] < used[:, None]
    if not torch.compiler.is_compiling() and bool((((table < 0) | (table >= pages)) & needed).any()):
        raise ValueError(f"block_table: expected page ids in [0, {pages}) for the pages each sequence uses")
    return cache[table.clamp(0, pages - 1).long()].flatten(1, 2)  # unused entries may hold anything


def _schedule(num_splits: int):
    # flash-attn: 0 = heuristic, 1 = no split, n > 1 = n key splits.
    if num_splits <= 0:
        return "auto", 0
    return ("no_split", 0) if num_splits == 1 else ("split_kv", int(num_splits))


@torch.no_grad()
def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None, rotary_sin=None,
                            cache_seqlens=None, cache_batch_idx=None, cache_leftpad=None, block_table=None,
                            softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                            rotary_interleaved=True, alibi_slopes=None, num_splits=0, return_softmax_lse=False):
    """Attention of q (B, Sq, Hq, D) over a KV cache after appending k/v (B, Snew, Hkv, D) in place at
    cache_seqlens (int or int32 (B,)). k_cache/v_cache: (B_cache, S_cache, Hkv, D), or pages (num_pages,
    page_size, Hkv, D) with block_table int32 (B, max_pages) (any page size). rotary_cos/rotary_sin
    (seqlen_ro, rotary_dim / 2) rotate k and q (see the module docstring). cache_batch_idx selects cache rows.
    Returns out (B, Sq, Hq, D) (and the LSE (B, Hq, Sq)). No backward (as flash-attn)."""
    if cache_leftpad is not None:
        raise NotImplementedError("cache_leftpad: left-padded KV caches are not supported")
    if (k is None) != (v is None):
        raise ValueError("k, v: expected both or neither, given only one")
    if (rotary_cos is None) != (rotary_sin is None):
        raise ValueError("rotary_cos, rotary_sin: expected both or neither, given only one")
    if rotary_cos is not None and k is None:
        raise ValueError("rotary_cos: expected k and v with it (rotary embedding applies to appended tokens)")
    batch, sq = q.shape[0], q.shape[1]
    table = _table(block_table, cache_batch_idx, batch)
    if table is None and k_cache.shape[0] > batch:  # flash-attn reads the first B rows of a larger cache
        k_cache, v_cache = k_cache[:batch], v_cache[:batch]
    if cache_seqlens is None:
        if k is not None:
            raise ValueError("cache_seqlens: expected the cache lengths where k, v are appended, given None")
        cache_seqlens = k_cache.shape[1] * (1 if table is None else table.shape[1])  # every cached key
    lens, host = _lengths(cache_seqlens, batch, q.device)
    new = 0 if k is None else k.shape[1]
    if k is not None:
        cos = sin = q_rotated_in_append = None
        if rotary_cos is not None:
            cos, sin = rotary_cos.float().contiguous(), rotary_sin.float().contiguous()
            consecutive = causal or tuple(window_size) != (-1, -1)
            if consecutive and sq == new:  # the append rotates q with k's positions (one kernel on the GPU)
                q = q_rotated_in_append = q.clone(memory_format=torch.contiguous_format)
            else:
                steps = torch.arange(sq, device=q.device) if consecutive else torch.zeros(sq, dtype=torch.long,
                                                                                          device=q.device)
                q = rotate(q, cos, sin, lens.long()[:, None] + steps, rotary_interleaved)
        torch.ops.omniattn.kv_append(k_cache, v_cache, lens, k, v, table, cos, sin, rotary_interleaved,
                                     q_rotated_in_append, False, None if host is None else host.clone(), None)
    used = lens + new
    host_used = None if host is None else host + new
    alibi = None if alibi_slopes is None else alibi_slopes.float()
    left, right = int(window_size[0]), int(window_size[1])
    scale = None if softmax_scale is None else float(softmax_scale)
    if sq <= _MAX_DECODE_QUERIES:
        schedule, splits = _schedule(int(num_splits))
        out, lse = torch.ops.omniattn.decode(q, k_cache, v_cache, used, table, alibi, None, host_used, None, causal,
                                             left, right, 0, float(softcap), scale, "auto", schedule, splits, 0)
    else:
        keys, values = (k_cache, v_cache) if table is None else (_gather(k_cache, table, used),
                                                                 _gather(v_cache, table, used))
        out, lse = torch.ops.omniattn.fwd(q, keys, values, alibi, None, None, None, used, causal, left, right, 0,
                                          float(softcap), scale, "auto", False)
    return (out, lse) if return_softmax_lse else out
