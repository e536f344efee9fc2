"""torch.library custom ops ``omniattn::fwd`` and ``omniattn::bwd``.

They allocate their outputs with torch and hand every tensor to the C++ library zero-copy (DLPack). Fake
kernels give shapes to ``torch.compile``; the registered autograd makes ``loss.backward()`` work. The ops are
opaque to the compiler, so ``torch.compile(fullgraph=True)`` traces through them without graph breaks.
A block mask crosses as an int handle (``block_mask``, 0 = none) into omniattn.sparse's registry of live masks:
an op schema has no type for a C++ object, and the handle keeps the mask's cached device copies usable.
"""
from __future__ import annotations

import contextlib
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _C
from .sparse import mask_of

_NO_DSINK_SHAPE = (0,)  # dsink_logits when the call has no sink logits (ops cannot return None)


def _inner_contiguous(t: Tensor) -> Tensor:
    # The library needs a contiguous head dim only; any other stride crosses as is.
    return t if t.stride(-1) == 1 else t.contiguous()


def _dl(t: Optional[Tensor]) -> Optional[Tensor]:
    # DLPack refuses tensors that require grad; the ops sit below autograd, so their inputs are plain data.
    return None if t is None else t.detach()


def _stream(t: Tensor) -> int:
    # The CUDA kernels are enqueued on PyTorch's current stream of the tensor's device.
    return torch.cuda.current_stream(t.device).cuda_stream if t.is_cuda else 0


def _out_shapes(q: Tensor, v: Tensor, varlen: bool) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    out = (*q.shape[:-1], v.shape[-1])
    lse = (q.shape[1], q.shape[0]) if varlen else (q.shape[0], q.shape[2], q.shape[1])
    return out, lse


def _options(alibi_slopes, sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k, causal, window_left,
             window_right, sinks, softcap, scale, backend, deterministic, stream, block_mask):
    mask = mask_of(block_mask)
    return dict(causal=causal, window_left=window_left, window_right=window_right, sinks=sinks, softcap=softcap,
                scale=scale, alibi_slopes=_dl(alibi_slopes), sink_logits=_dl(sink_logits),
                cu_seqlens_q=_dl(cu_seqlens_q), cu_seqlens_k=_dl(cu_seqlens_k), seqused_k=_dl(seqused_k),
                backend=backend, deterministic=deterministic, stream=stream,
                block_mask=None if mask is None else mask._native)


@torch.library.custom_op("omniattn::fwd", mutates_args=())
def fwd(q: Tensor, k: Tensor, v: Tensor, alibi_slopes: Optional[Tensor], sink_logits: Optional[Tensor],
        cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor], seqused_k: Optional[Tensor],
        causal: bool, window_left: int, window_right: int, sinks: int, softcap: float, scale: Optional[float],
        backend: str, deterministic: bool, block_mask: int = 0) -> Tuple[Tensor, Tensor]:
    """Returns (out, lse): out like q with v's head dim, lse f32 [B, Hq, Sq] (varlen: [Hq, total_q])."""
    q, k, v = (_inner_contiguous(t) for t in (q, k, v))
    out_shape, lse_shape = _out_shapes(q, v, cu_seqlens_q is not None)
    out = torch.empty(out_shape, dtype=q.dtype, device=q.device)
    lse = torch.empty(lse_shape, dtype=torch.float32, device=q.device)
    with torch.cuda.device(q.device) if q.is_cuda else contextlib.nullcontext():
        _C.forward(_dl(q), _dl(k), _dl(v), out, lse,
                   **_options(alibi_slopes, sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k, causal, window_left,
                              window_right, sinks, softcap, scale, backend, deterministic, _stream(q), block_mask))
    return out, lse


@fwd.register_fake
def _fwd_fake(q, k, v, alibi_slopes, sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k, causal, window_left,
              window_right, sinks, softcap, scale, backend, deterministic, block_mask=0):
    out_shape, lse_shape = _out_shapes(q, v, cu_seqlens_q is not None)
    return q.new_empty(out_shape), q.new_empty(lse_shape, dtype=torch.float32)


@torch.library.custom_op("omniattn::bwd", mutates_args=())
def bwd(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, alibi_slopes: Optional[Tensor],
        sink_logits: Optional[Tensor], cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
        seqused_k: Optional[Tensor], causal: bool, window_left: int, window_right: int, sinks: int, softcap: float,
        scale: Optional[float], backend: str, deterministic: bool,
        block_mask: int = 0) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Returns (dq, dk, dv, dsink_logits); dsink_logits is empty when there are no sink logits."""
    dout, q, k, v, out = (_inner_contiguous(t) for t in (dout, q, k, v, out))
    dq, dk, dv = (torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v))
    dsink = torch.empty(sink_logits.shape if sink_logits is not None else _NO_DSINK_SHAPE, dtype=torch.float32,
                        device=q.device)
    with torch.cuda.device(q.device) if q.is_cuda else contextlib.nullcontext():
        _C.backward(_dl(q), _dl(k), _dl(v), _dl(out), _dl(lse), _dl(dout), dq, dk, dv,
                    dsink if sink_logits is not None else None,
                    **_options(alibi_slopes, sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k, causal, window_left,
                               window_right, sinks, softcap, scale, backend, deterministic, _stream(q), block_mask))
    return dq, dk, dv, dsink


@bwd.register_fake
def _bwd_fake(dout, q, k, v, out, lse, alibi_slopes, sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k, causal,
              window_left, window_right, sinks, softcap, scale, backend, deterministic, block_mask=0):
    dsink = q.new_empty(sink_logits.shape if sink_logits is not None else _NO_DSINK_SHAPE, dtype=torch.float32)
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape), dsink


# The positions of fwd's arguments that backward needs besides the saved tensors.
_FWD_TENSORS = ("q", "k", "v", "alibi_slopes", "sink_logits", "cu_seqlens_q", "cu_seqlens_k", "seqused_k")
_FWD_SCALARS = ("causal", "window_left", "window_right", "sinks", "softcap", "scale", "backend", "deterministic",
                "block_mask")


def _setup_context(ctx, inputs, output):
    tensors = inputs[: len(_FWD_TENSORS)]
    out, lse = output
    ctx.scalars = inputs[len(_FWD_TENSORS):]
    ctx.has_sinks = tensors[4] is not None
    # The backward uses the same mask: hold it, so that dropping the caller's reference before backward is safe.
    ctx.block_mask = mask_of(ctx.scalars[-1])
    ctx.save_for_backward(*tensors, out, lse)
    # LSE is returned for inspection, as flash-attn's; no gradient flows through it.
    ctx.mark_non_differentiable(lse)


def _backward(ctx, dout, _dlse):
    q, k, v, alibi, sink_logits, cu_q, cu_k, seqused_k, out, lse = ctx.saved_tensors
    dq, dk, dv, dsink = bwd(dout, q, k, v, out, lse, alibi, sink_logits, cu_q, cu_k, seqused_k, *ctx.scalars)
    return (dq, dk, dv, None, dsink if ctx.has_sinks else None, None, None, None) + (None,) * len(_FWD_SCALARS)


fwd.register_autograd(_backward, setup_context=_setup_context)

