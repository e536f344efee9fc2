"""Token-level attention on a CSR graph (sparse.hpp's graph_attention_forward/backward; CPU).

Query node i attends to the key nodes col_indices[row_offsets[i]:row_offsets[i+1]] (strictly increasing).
torch tensors go through the custom ops omniattn::graph_fwd / graph_bwd (autograd, torch.compile); host arrays
go straight to the library.
"""
from __future__ import annotations

from typing import Optional

from . import _C
from ._frameworks import back_to, framework_of, numpy_inner_contiguous, to_framework, torch, uses_torch


def graph_attention(q, k, v, row_offsets, col_indices, *, scale: Optional[float] = None, softcap: float = 0.0,
                    return_lse: bool = False):
    """q [Nq, Hq, D], k [Nk, Hkv, D], v [Nk, Hkv, Dv] (f32/bf16/f16, CPU), row_offsets int32 [Nq + 1],
    col_indices int32 [nnz]. Returns out [Nq, Hq, Dv] (and lse f32 [Hq, Nq]); a node without edges gives 0
    and LSE -inf. Differentiable in q, k, v with torch."""
    framework, use_torch = framework_of(q), uses_torch(q)
    q, k, v, rows, cols = (to_framework(t, use_torch, n) for t, n in ((q, "q"), (k, "k"), (v, "v"),
                                                                      (row_offsets, "row_offsets"),
                                                                      (col_indices, "col_indices")))
    scale = None if scale is None else float(scale)
    if use_torch:
        out, lse = torch.ops.omniattn.graph_fwd(q, k, v, rows.to(torch.int32), cols.to(torch.int32), scale,
                                                float(softcap))
    else:
        import numpy as np

        q, k, v = (numpy_inner_contiguous(t) for t in (q, k, v))
        out = np.empty((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
        lse = np.empty((q.shape[1], q.shape[0]), dtype=np.float32)
        _C.sparse.graph_forward(q, k, v, np.ascontiguousarray(rows, dtype=np.int32),
                                np.ascontiguousarray(cols, dtype=np.int32), out, lse, scale=scale,
                                softcap=float(softcap))
    out, lse = back_to(framework, out), back_to(framework, lse)
    return (out, lse) if return_lse else out
