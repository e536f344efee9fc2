"""torch.library custom ops ``omniattn::decode`` (attention_decode) and ``omniattn::kv_append``
(kv_cache_append, in place), with fake kernels so that torch.compile traces through them. No autograd: decoding
is inference (as flash-attn's flash_attn_with_kvcache)."""
from __future__ import annotations

import contextlib
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _C
from ._torch_ops import _dl, _inner_contiguous, _stream


def _device(t: Tensor):
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _decode_shapes(q: Tensor, v_cache: Tensor):
    b, sq, hq, _ = q.shape
    return (b, sq, hq, v_cache.shape[-1]), (b, hq, sq)


@torch.library.custom_op("omniattn::decode", mutates_args=())
def decode(q: Tensor, k_cache: Tensor, v_cache: Tensor, seq_lens: Tensor, block_table: Optional[Tensor],
           alibi_slopes: Optional[Tensor], sink_logits: Optional[Tensor], host_seq_lens: Optional[Tensor],
           host_block_table: Optional[Tensor], causal: bool, window_left: int, window_right: int, sinks: int,
           softcap: float, scale: Optional[float], backend: str, schedule: str, num_splits: int,
           num_ctas: int) -> Tuple[Tensor, Tensor]:
    """Returns (out [B, Sq, Hq, Dv], lse f32 [B, Hq, Sq]) of q against the cache's first seq_lens[b] keys."""
    q = _inner_contiguous(q)
    out_shape, lse_shape = _decode_shapes(q, v_cache)
    out = q.new_empty(out_shape)
    lse = q.new_empty(lse_shape, dtype=torch.float32)
    with _device(q):
        _C.decode(_dl(q), _dl(k_cache), _dl(v_cache), _dl(seq_lens), _dl(block_table), out, lse, causal=causal,
                  window_left=window_left, window_right=window_right, sinks=sinks, softcap=softcap, scale=scale,
                  alibi_slopes=_dl(alibi_slopes), sink_logits=_dl(sink_logits), backend=backend, schedule=schedule,
                  num_splits=num_splits, num_ctas=num_ctas, host_seq_lens=_dl(host_seq_lens),
                  host_block_table=_dl(host_block_table), stream=_stream(q))
    return out, lse


@decode.register_fake
def _decode_fake(q, k_cache, v_cache, seq_lens, block_table, alibi_slopes, sink_logits, host_seq_lens,
                 host_block_table, causal, window_left, window_right, sinks, softcap, scale, backend, schedule,
                 num_splits, num_ctas):
    out_shape, lse_shape = _decode_shapes(q, v_cache)
    return q.new_empty(out_shape), q.new_empty(lse_shape, dtype=torch.float32)


@torch.library.custom_op("omniattn::kv_append", mutates_args=("k_cache", "v_cache", "seq_lens", "q", "host_seq_lens"))
def kv_append(k_cache: Tensor, v_cache: Tensor, seq_lens: Tensor, k: Tensor, v: Tensor,
              block_table: Optional[Tensor], rotary_cos: Optional[Tensor], rotary_sin: Optional[Tensor],
              interleaved: bool, q: Optional[Tensor], advance_lengths: bool, host_seq_lens: Optional[Tensor],
              host_block_table: Optional[Tensor]) -> None:
    """Writes k/v into the caches at seq_lens[b].. (rotating k, and q in place, with the rotary tables) and, with
    advance_lengths, adds Sn to seq_lens (and host_seq_lens)."""
    with _device(k_cache):
        _C.kv_cache_append(_dl(k_cache), _dl(v_cache), _dl(seq_lens), _dl(_inner_contiguous(k)),
                           _dl(_inner_contiguous(v)), _dl(block_table), rotary_cos=_dl(rotary_cos),
                           rotary_sin=_dl(rotary_sin), interleaved=interleaved, q=_dl(q),
                           advance_lengths=advance_lengths, host_seq_lens=_dl(host_seq_lens),
                           host_block_table=_dl(host_block_table), stream=_stream(k_cache))


@kv_append.register_fake
def _kv_append_fake(k_cache, v_cache, seq_lens, k, v, block_table, rotary_cos, rotary_sin, interleaved, q,
                    advance_lengths, host_seq_lens, host_block_table):
    return None
