"""omniattn.attention / omniattn.attention_backward for torch tensors, numpy arrays and any DLPack array.

torch tensors go through the custom ops (autograd, torch.compile); host arrays go straight to the C++ library;
CUDA arrays of other frameworks (cupy, jax) are viewed as torch tensors (zero-copy). Results come back in the
caller's framework (_frameworks.py).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

from . import _C
from ._frameworks import back_to, framework_of, numpy_inner_contiguous, to_framework, torch, uses_torch
from .sparse import BlockMask


def _window(window: Sequence[int]) -> Tuple[int, int]:
    if len(window) != 2:
        raise ValueError(f"window: expected (left, right) with -1 for unbounded, given {window!r}")
    return int(window[0]), int(window[1])


def _check_block_mask(block_mask: Any) -> Optional[BlockMask]:
    if block_mask is not None and not isinstance(block_mask, BlockMask):
        raise TypeError(f"block_mask: expected an omniattn.BlockMask (omniattn.sparse builds them), "
                        f"given {type(block_mask).__name__}")
    return block_mask


def _handle(block_mask: Optional[BlockMask]) -> int:
    # The torch ops take the mask as an int handle (0 = none): see omniattn/sparse.py.
    return 0 if block_mask is None else block_mask._handle


def _torch_aux(alibi_slopes, sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k):
    # The library takes f32 slopes/sink logits and i32 offsets; the casts are differentiable where it matters.
    f32 = lambda t: None if t is None else t.to(torch.float32)
    i32 = lambda t: None if t is None else t.to(torch.int32)
    return f32(alibi_slopes), f32(sink_logits), i32(cu_seqlens_q), i32(cu_seqlens_k), i32(seqused_k)


def _numpy_kwargs(alibi_slopes, sink_logits, cu_seqlens_q, cu_seqlens_k, seqused_k):
    import numpy as np

    f32 = lambda a: None if a is None else np.ascontiguousarray(a, dtype=np.float32)
    i32 = lambda a: None if a is None else np.ascontiguousarray(a, dtype=np.int32)
    return dict(alibi_slopes=f32(alibi_slopes), sink_logits=f32(sink_logits), cu_seqlens_q=i32(cu_seqlens_q),
                cu_seqlens_k=i32(cu_seqlens_k), seqused_k=i32(seqused_k))


def attention(q, k, v, *, causal: bool = False, window: Sequence[int] = (-1, -1), sinks: int = 0,
              softcap: float = 0.0, alibi_slopes=None, sink_logits=None, scale: Optional[float] = None,
              cu_seqlens_q=None, cu_seqlens_k=None, seqused_k=None, block_mask=None, return_lse: bool = False,
              backend: str = "auto", deterministic: bool = False):
    """softmax(mask(softcap(scale·Q·Kᵀ)) − ALiBi)·V.

    q [B, Sq, Hq, D], k [B, Sk, Hkv, D], v [B, Sk, Hkv, Dv] (or varlen [total, H, D] with cu_seqlens_q/k,
    int32 [B+1]); Hq a multiple of Hkv (GQA). Causal and window are aligned to the bottom-right diagonal.
    Returns out [B, Sq, Hq, Dv] in q's dtype, and with return_lse=True also lse f32 [B, Hq, Sq] ([Hq, total]).
    `deterministic` selects the reproducible backward that autograd runs later. `block_mask` (an
    omniattn.BlockMask) restricts the keys further: only its listed blocks are computed (backward too).
    """
    block_mask = _check_block_mask(block_mask)
    left, right = _window(window)
    framework, use_torch = framework_of(q), uses_torch(q)
    q, k, v = (to_framework(t, use_torch, n) for t, n in ((q, "q"), (k, "k"), (v, "v")))
    aux = [to_framework(t, use_torch, n) for t, n in ((alibi_slopes, "alibi_slopes"), (sink_logits, "sink_logits"),
                                                       (cu_seqlens_q, "cu_seqlens_q"), (cu_seqlens_k, "cu_seqlens_k"),
                                                       (seqused_k, "seqused_k"))]
    if use_torch:
        out, lse = torch.ops.omniattn.fwd(q, k, v, *_torch_aux(*aux), causal, left, right, int(sinks),
                                          float(softcap), None if scale is None else float(scale), backend,
                                          deterministic, _handle(block_mask))
    else:
        out, lse = _numpy_forward(q, k, v, aux, causal, left, right, sinks, softcap, scale, backend, deterministic,
                                  block_mask)
    out, lse = back_to(framework, out), back_to(framework, lse)
    return (out, lse) if return_lse else out


def _numpy_forward(q, k, v, aux, causal, left, right, sinks, softcap, scale, backend, deterministic, block_mask):
    import numpy as np

    q, k, v = (numpy_inner_contiguous(t) for t in (q, k, v))
    varlen = aux[2] is not None
    out = np.empty((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    lse = np.empty((q.shape[1], q.shape[0]) if varlen else (q.shape[0], q.shape[2], q.shape[1]), dtype=np.float32)
    _C.forward(q, k, v, out, lse, causal=causal, window_left=left, window_right=right, sinks=int(sinks),
               softcap=float(softcap), scale=scale, backend=backend, deterministic=deterministic,
               block_mask=None if block_mask is None else block_mask._native, **_numpy_kwargs(*aux))
    return out, lse


def attention_backward(dout, q, k, v, out, lse, *, causal: bool = False, window: Sequence[int] = (-1, -1),
                       sinks: int = 0, softcap: float = 0.0, alibi_slopes=None, sink_logits=None,
                       scale: Optional[float] = None, cu_seqlens_q=None, cu_seqlens_k=None, seqused_k=None,
                       block_mask=None, backend: str = "auto", deterministic: bool = False):
    """Gradients of attention() given its out and lse (return_lse=True) and dout.

    Returns (dq, dk, dv), plus dsink_logits (f32 [Hq]) when sink_logits is given. The options must be the
    forward's. With torch tensors, prefer loss.backward(): attention() registers this as its autograd.
    """
    block_mask = _check_block_mask(block_mask)
    left, right = _window(window)
    framework, use_torch = framework_of(q), uses_torch(q)
    names = ("dout", "q", "k", "v", "out", "lse")
    dout, q, k, v, out, lse = (to_framework(t, use_torch, n) for t, n in zip((dout, q, k, v, out, lse), names))
    aux = [to_framework(t, use_torch, n) for t, n in ((alibi_slopes, "alibi_slopes"), (sink_logits, "sink_logits"),
                                                       (cu_seqlens_q, "cu_seqlens_q"), (cu_seqlens_k, "cu_seqlens_k"),
                                                       (seqused_k, "seqused_k"))]
    if use_torch:
        dq, dk, dv, dsink = torch.ops.omniattn.bwd(dout, q, k, v, out, lse, *_torch_aux(*aux), causal, left, right,
                                                   int(sinks), float(softcap),
                                                   None if scale is None else float(scale), backend, deterministic,
                                                   _handle(block_mask))
    else:
        import numpy as np

        dout, q, k, v, out = (numpy_inner_contiguous(t) for t in (dout, q, k, v, out))
        dq, dk, dv = (np.empty(t.shape, dtype=t.dtype) for t in (q, k, v))
        dsink = None if aux[1] is None else np.empty(np.shape(aux[1]), dtype=np.float32)
        _C.backward(q, k, v, out, lse, dout, dq, dk, dv, dsink, causal=causal, window_left=left, window_right=right,
                    sinks=int(sinks), softcap=float(softcap), scale=scale, backend=backend,
                    deterministic=deterministic, block_mask=None if block_mask is None else block_mask._native,
                    **_numpy_kwargs(*aux))
    grads = tuple(back_to(framework, g) for g in (dq, dk, dv, dsink))
    return grads[:3] if aux[1] is None else grads
