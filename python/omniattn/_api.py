"""omniattn.attention / omniattn.attention_backward for torch tensors, numpy arrays and any DLPack array.

torch tensors go through the custom ops (autograd, torch.compile); numpy arrays and other host DLPack arrays
go straight to the C++ library and come back as numpy arrays; CUDA DLPack arrays from other frameworks
(cupy, jax...) are viewed as torch tensors (zero-copy) and come back as torch tensors.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

from . import _C

try:
    import torch
except ImportError:  # numpy-only installs
    torch = None

_DL_CPU, _DL_CUDA_HOST = 1, 3


def _is_torch(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def _window(window: Sequence[int]) -> Tuple[int, int]:
    if len(window) != 2:
        raise ValueError(f"window: expected (left, right) with -1 for unbounded, given {window!r}")
    return int(window[0]), int(window[1])


def _reject_block_mask(block_mask: Any) -> None:
    if block_mask is not None:
        raise NotImplementedError("block_mask: block-sparse attention is not yet available from Python")


def _to_framework(x: Any, use_torch: bool, name: str) -> Any:
    """Views a DLPack array as a torch tensor or numpy array (zero-copy when it is one already)."""
    if x is None:
        return None
    if use_torch:
        return x if _is_torch(x) else torch.from_dlpack(x)
    import numpy as np

    if isinstance(x, np.ndarray):
        return x
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"{name}: expected a torch tensor, a numpy array or an object with __dlpack__, "
                        f"given {type(x).__name__}")
    return np.from_dlpack(x)


def _uses_torch(q: Any) -> bool:
    if _is_torch(q):
        return True
    if hasattr(q, "__dlpack_device__") and q.__dlpack_device__()[0] not in (_DL_CPU, _DL_CUDA_HOST):
        if torch is None:
            raise TypeError("q: device arrays need torch installed (they are viewed as torch tensors)")
        return True
    return False


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


def _numpy_inner_contiguous(a):
    import numpy as np

    return a if a.ndim == 0 or a.strides[-1] == a.itemsize else np.ascontiguousarray(a)


def attention(q, k, v, *, causal: bool = False, window: Sequence[int] = (-1, -1), sinks: int = 0,
              softcap: float = 0.0, alibi_slopes=None, sink_logits=None, scale: Optional[float] = None,
              cu_seqlens_q=None, cu_seqlens_k=None, seqused_k=None, block_mask=None, return_lse: bool = False,
              backend: str = "auto", deterministic: bool = False):
    """softmax(mask(softcap(scale·Q·Kᵀ)) − ALiBi)·V.

    q [B, Sq, Hq, D], k [B, Sk, Hkv, D], v [B, Sk, Hkv, Dv] (or varlen [total, H, D] with cu_seqlens_q/k,
    int32 [B+1]); Hq a multiple of Hkv (GQA). Causal and window are aligned to the bottom-right diagonal.
    Returns out [B, Sq, Hq, Dv] in q's dtype, and with return_lse=True also lse f32 [B, Hq, Sq] ([Hq, total]).
    `deterministic` selects the reproducible backward that autograd runs later.
    """
    _reject_block_mask(block_mask)
    left, right = _window(window)
    use_torch = _uses_torch(q)
    q, k, v = (_to_framework(t, use_torch, n) for t, n in ((q, "q"), (k, "k"), (v, "v")))
    aux = [_to_framework(t, use_torch, n) for t, n in ((alibi_slopes, "alibi_slopes"), (sink_logits, "sink_logits"),
                                                       (cu_seqlens_q, "cu_seqlens_q"), (cu_seqlens_k, "cu_seqlens_k"),
                                                       (seqused_k, "seqused_k"))]
    if use_torch:
        out, lse = torch.ops.omniattn.fwd(q, k, v, *_torch_aux(*aux), causal, left, right, int(sinks),
                                          float(softcap), None if scale is None else float(scale), backend,
                                          deterministic)
        return (out, lse) if return_lse else out
    import numpy as np

    q, k, v = (_numpy_inner_contiguous(t) for t in (q, k, v))
    varlen = aux[2] is not None
    out = np.empty((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    lse = np.empty((q.shape[1], q.shape[0]) if varlen else (q.shape[0], q.shape[2], q.shape[1]), dtype=np.float32)
    _C.forward(q, k, v, out, lse, causal=causal, window_left=left, window_right=right, sinks=int(sinks),
               softcap=float(softcap), scale=scale, backend=backend, deterministic=deterministic,
               **_numpy_kwargs(*aux))
    return (out, lse) if return_lse else out


def attention_backward(dout, q, k, v, out, lse, *, causal: bool = False, window: Sequence[int] = (-1, -1),
                       sinks: int = 0, softcap: float = 0.0, alibi_slopes=None, sink_logits=None,
                       scale: Optional[float] = None, cu_seqlens_q=None, cu_seqlens_k=None, seqused_k=None,
                       block_mask=None, backend: str = "auto", deterministic: bool = False):
    """Gradients of attention() given its out and lse (return_lse=True) and dout.

    Returns (dq, dk, dv), plus dsink_logits (f32 [Hq]) when sink_logits is given. The options must be the
    forward's. With torch tensors, prefer loss.backward(): attention() registers this as its autograd.
    """
    _reject_block_mask(block_mask)
    left, right = _window(window)
    use_torch = _uses_torch(q)
    names = ("dout", "q", "k", "v", "out", "lse")
    dout, q, k, v, out, lse = (_to_framework(t, use_torch, n) for t, n in zip((dout, q, k, v, out, lse), names))
    aux = [_to_framework(t, use_torch, n) for t, n in ((alibi_slopes, "alibi_slopes"), (sink_logits, "sink_logits"),
                                                       (cu_seqlens_q, "cu_seqlens_q"), (cu_seqlens_k, "cu_seqlens_k"),
                                                       (seqused_k, "seqused_k"))]
    if use_torch:
        dq, dk, dv, dsink = torch.ops.omniattn.bwd(dout, q, k, v, out, lse, *_torch_aux(*aux), causal, left, right,
                                                   int(sinks), float(softcap),
                                                   None if scale is None else float(scale), backend, deterministic)
    else:
        import numpy as np

        dout, q, k, v, out = (_numpy_inner_contiguous(t) for t in (dout, q, k, v, out))
        dq, dk, dv = (np.empty(t.shape, dtype=t.dtype) for t in (q, k, v))
        dsink = None if aux[1] is None else np.empty(np.shape(aux[1]), dtype=np.float32)
        _C.backward(q, k, v, out, lse, dout, dq, dk, dv, dsink, causal=causal, window_left=left, window_right=right,
                    sinks=int(sinks), softcap=float(softcap), scale=scale, backend=backend,
                    deterministic=deterministic, **_numpy_kwargs(*aux))
    return (dq, dk, dv) if aux[1] is None else (dq, dk, dv, dsink)
