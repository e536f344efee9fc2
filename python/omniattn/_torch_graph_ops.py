"""torch.library custom ops ``omniattn::graph_fwd`` and ``omniattn::graph_bwd`` (graph attention, CPU) with
fake kernels and autograd, like _torch_ops.py's."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _C
from ._torch_ops import _dl, _inner_contiguous


@torch.library.custom_op("omniattn::graph_fwd", mutates_args=())
def graph_fwd(q: Tensor, k: Tensor, v: Tensor, row_offsets: Tensor, col_indices: Tensor, scale: Optional[float],
              softcap: float) -> Tuple[Tensor, Tensor]:
    """Returns (out [Nq, Hq, Dv], lse f32 [Hq, Nq])."""
    q, k, v = (_inner_contiguous(t) for t in (q, k, v))
    out = q.new_empty((*q.shape[:-1], v.shape[-1]))
    lse = q.new_empty((q.shape[1], q.shape[0]), dtype=torch.float32)
    _C.sparse.graph_forward(_dl(q), _dl(k), _dl(v), _dl(row_offsets), _dl(col_indices), out, lse, scale=scale,
                            softcap=softcap)
    return out, lse


@graph_fwd.register_fake
def _graph_fwd_fake(q, k, v, row_offsets, col_indices, scale, softcap):
    return q.new_empty((*q.shape[:-1], v.shape[-1])), q.new_empty((q.shape[1], q.shape[0]), dtype=torch.float32)


@torch.library.custom_op("omniattn::graph_bwd", mutates_args=())
def graph_bwd(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, row_offsets: Tensor,
              col_indices: Tensor, scale: Optional[float], softcap: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Returns (dq, dk, dv)."""
    dout, q, k, v, out = (_inner_contiguous(t) for t in (dout, q, k, v, out))
    dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
    _C.sparse.graph_backward(_dl(q), _dl(k), _dl(v), _dl(row_offsets), _dl(col_indices), _dl(out), _dl(lse),
                             _dl(dout), dq, dk, dv, scale=scale, softcap=softcap)
    return dq, dk, dv


@graph_bwd.register_fake
def _graph_bwd_fake(dout, q, k, v, out, lse, row_offsets, col_indices, scale, softcap):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output):
    q, k, v, rows, cols, scale, softcap = inputs
    out, lse = output
    ctx.scale, ctx.softcap = scale, softcap
    ctx.save_for_backward(q, k, v, rows, cols, out, lse)
    ctx.mark_non_differentiable(lse)


def _backward(ctx, dout, _dlse):
    q, k, v, rows, cols, out, lse = ctx.saved_tensors
    dq, dk, dv = graph_bwd(dout, q, k, v, out, lse, rows, cols, ctx.scale, ctx.softcap)
    return dq, dk, dv, None, None, None, None


graph_fwd.register_autograd(_backward, setup_context=_setup_context)
