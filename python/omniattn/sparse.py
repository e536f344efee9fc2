"""Block-sparse masks: ``omniattn.BlockMask``, the generators of include/omniattn/sparse.hpp, token orders for
grids, and token-level graph attention.

    mask = omniattn.sparse.sliding_window(256, 0, q_tokens=4096)         # causal window of 256 keys
    out = omniattn.attention(q, k, v, block_mask=mask)                     # CPU or CUDA, autograd, torch.compile

A mask is built on the host once (its lists are validated then) and copied to a CUDA device the first time a call
on that device uses it (or by ``mask.to(device)``); the copy lives as long as the mask. The torch custom ops take
the mask as an int handle into a registry of live masks, so ``torch.compile(fullgraph=True)`` traces through them
(the handle is a constant of the graph, guarded like any attribute); build masks outside compiled regions.
"""
from __future__ import annotations

import itertools
import weakref
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _C

_native = _C.sparse
BlockSize = Union[int, Tuple[int, int]]

_live: "weakref.WeakValueDictionary[int, BlockMask]" = weakref.WeakValueDictionary()
_next_handle = itertools.count(1)  # 0 means "no mask"; handles are never reused


def mask_of(handle: int) -> Optional["BlockMask"]:
    """The live BlockMask of a handle (None for 0); ValueError when the mask was freed."""
    if handle == 0:
        return None
    mask = _live.get(handle)
    if mask is None:
        raise ValueError(f"block_mask: expected a live omniattn.BlockMask, given handle {handle} of a freed mask "
                         f"(keep the mask alive while calls, or a compiled graph, use it)")
    return mask


def _host_i32(a: Any, name: str) -> np.ndarray:
    """A contiguous int32 numpy copy (or view) of a host array, list or torch tensor."""
    if hasattr(a, "detach"):  # torch tensor, on any device
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu" and arr.size:  # an empty list is float64 to numpy
        raise TypeError(f"{name}: expected integers, given dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _device_index(device: Any) -> Optional[int]:
    """CUDA device index of `device` ("cuda", "cuda:1", torch.device, int), or None for the CPU."""
    if isinstance(device, int):
        return device
    import torch

    d = torch.device(device)
    if d.type == "cpu":
        return None
    if d.type != "cuda":
        raise ValueError(f"device: expected 'cpu' or a CUDA device, given {device!r}")
    return torch.cuda.current_device() if d.index is None else d.index


class BlockMask:
    """A block-sparse mask: per (batch, mask head, query block) the KV blocks to compute, each full (every pair
    visible) or partial (an element rule decides), as in include/omniattn/mask.hpp. Build one with the generators
    of this module, BlockMask.from_block_map or BlockMask.from_lists; pass it as attention(..., block_mask=mask).

    Semantics for query i and key j: the call's causal/window/sinks mask AND the block (i // block_q,
    j // block_k) is listed for the mask head of the query head AND (full OR the element rule holds).
    ``heads`` is 1 (shared), Hkv (one per KV head) or Hq; ``batch`` is 1 (shared) or B.
    """

    def __init__(self, native: Any):
        # Use the generators; this wraps a native mask and registers it for the torch ops.
        self._native = native
        self._handle = next(_next_handle)
        _live[self._handle] = self

    # Geometry -----------------------------------------------------------------------------------------------
    @property
    def batch(self) -> int:
        return self._native.geometry[0]

    @property
    def heads(self) -> int:
        return self._native.geometry[1]

    @property
    def q_tokens(self) -> int:
        return self._native.geometry[2]

    @property
    def k_tokens(self) -> int:
        return self._native.geometry[3]

    @property
    def block_size(self) -> Tuple[int, int]:
        """(block_q, block_k)."""
        return self._native.geometry[4], self._native.geometry[5]

    @property
    def listed_blocks(self) -> int:
        """Blocks listed (full + partial) over all rows."""
        return self._native.listed_blocks

    @property
    def density(self) -> float:
        """listed_blocks over all blocks of the [batch, heads] grid."""
        return self._native.density

    @property
    def token_order(self) -> Optional[np.ndarray]:
        """The grid order a grid mask was built with (position -> grid index), or None."""
        return self._native.token_order

    # Inspection ---------------------------------------------------------------------------------------------
    def block_map(self) -> np.ndarray:
        """uint8 [batch, heads, q_blocks, k_blocks]: 0 skipped, 1 partial, 2 full."""
        return self._native.block_map()

    def to_dense(self) -> np.ndarray:
        """bool [batch, heads, q_tokens, k_tokens]: which keys each query sees through this mask alone (a call with
        exactly q_tokens queries and k_tokens keys per sequence). O(batch·heads·q·k) memory: for small masks."""
        return self._native.to_dense().astype(bool)

    def lists(self) -> dict:
        """The CSR lists as int32 numpy arrays: {'kv_partial'|'kv_full'|'q_partial'|'q_full':
        {'num_blocks', 'offsets', 'indices'}} (docs/sparse.md describes the layout)."""
        return self._native.lists()

    # Devices ------------------------------------------------------------------------------------------------
    def to(self, device: Any) -> "BlockMask":
        """Copies the mask to a CUDA device now (calls do it on first use otherwise); returns self."""
        index = _device_index(device)
        if index is not None:
            self._native.upload(index)
        return self

    @property
    def devices(self) -> list:
        """CUDA device indices holding a copy."""
        return list(self._native.devices)

    def __repr__(self) -> str:
        return (f"BlockMask(batch={self.batch}, heads={self.heads}, q_tokens={self.q_tokens}, "
                f"k_tokens={self.k_tokens}, block_size={self.block_size}, listed_blocks={self.listed_blocks}, "
                f"density={self.density:.3g})")

    # Constructors -------------------------------------------------------------------------------------------
    @classmethod
    def from_block_map(cls, block_map: Any, *, q_tokens: Optional[int] = None, k_tokens: Optional[int] = None,
                       block_size: BlockSize = 128, **element: Any) -> "BlockMask":
        """From a dense map [batch, heads, q_blocks, k_blocks] (or [q_blocks, k_blocks]) of 0 (skipped),
        1 (partial) and 2 (full). q_tokens defaults to q_blocks × block_q, k_tokens to q_tokens when q_tokens is
        given (self-attention), else to k_blocks × block_k. `element` is the rule of partial blocks (see
        from_lists)."""
        m = block_map.detach().cpu().numpy() if hasattr(block_map, "detach") else np.asarray(block_map)
        if m.ndim == 2:
            m = m[None, None]
        if m.ndim != 4:
            raise ValueError(f"block_map: expected [batch, heads, q_blocks, k_blocks], given shape {m.shape}")
        bq, bk = _block_sizes(block_size)
        q = m.shape[2] * bq if q_tokens is None else q_tokens
        k = k_tokens if k_tokens is not None else q_tokens if q_tokens is not None else m.shape[3] * bk
        geometry = _geometry(q, k, m.shape[0], m.shape[1], block_size)
        return cls(_native.from_block_map(geometry, np.ascontiguousarray(m, dtype=np.uint8),
                                          **_element_args(**element)))

    @classmethod
    def from_lists(cls, partial_offsets, partial_indices, full_offsets, full_indices, *, q_tokens: int,
                   k_tokens: Optional[int] = None, batch: int = 1, heads: int = 1, block_size: BlockSize = 128,
                   **element: Any) -> "BlockMask":
        """From CSR rows per (batch, head, query block) of partial and full KV block indices (each row strictly
        increasing, disjoint). `element` is the rule of partial blocks, every given condition ANDed:
        window_left/window_right/sinks (around the bottom-right diagonal, -1 unbounded), prefix (keys < prefix
        always visible), head_windows [heads, 3] of (left, right, sinks), q_document/k_document (document id per
        token), grid (a neighborhood or axial rule: dict(kind=, shape=, kernel=, dilation=, stride=, causal=))
        and token_order (position -> grid index)."""
        geometry = _geometry(q_tokens, k_tokens, batch, heads, block_size)
        lists = (_host_i32(a, n) for a, n in ((partial_offsets, "partial_offsets"), (partial_indices, "partial_indices"),
                                             (full_offsets, "full_offsets"), (full_indices, "full_indices")))
        return cls(_native.from_lists(geometry, *lists, **_element_args(**element)))


def _block_sizes(block_size: BlockSize) -> Tuple[int, int]:
    if isinstance(block_size, int):
        return block_size, block_size
    bq, bk = block_size
    return int(bq), int(bk)


def _geometry(q_tokens, k_tokens, batch, heads, block_size) -> Tuple[int, ...]:
    bq, bk = _block_sizes(block_size)
    k = q_tokens if k_tokens is None else k_tokens
    return int(batch), int(heads), int(q_tokens), int(k), bq, bk


def _per_axis(value: Any, ndim: int, name: str) -> list:
    values = [value] * ndim if isinstance(value, (int, bool, np.integer)) else list(value)
    if len(values) != ndim:
        raise ValueError(f"{name}: expected one value or {ndim} (one per axis), given {value!r}")
    return values


def _ndim(shape: Any) -> int:
    return 1 if isinstance(shape, int) else len(shape)


def _grid(kind: str, shape: Sequence[int], kernel: Any = 1, dilation: Any = 1, stride: Any = 1,
          causal: Any = False) -> Any:
    shape = [int(s) for s in ([shape] if isinstance(shape, int) else shape)]
    n = len(shape)
    return _native.Grid(kind, shape, [int(x) for x in _per_axis(kernel, n, "kernel")],
                        [int(x) for x in _per_axis(dilation, n, "dilation")],
                        [int(x) for x in _per_axis(stride, n, "stride")],
                        [bool(x) for x in _per_axis(causal, n, "causal")])


def _element_args(window_left: int = -1, window_right: int = -1, sinks: int = 0, prefix: int = 0,
                  head_windows: Any = None, q_document: Any = None, k_document: Any = None, grid: Any = None,
                  token_order: Any = None) -> dict:
    return dict(window_left=int(window_left), window_right=int(window_right), sinks=int(sinks), prefix=int(prefix),
                head_windows=None if head_windows is None else _host_i32(head_windows, "head_windows").reshape(-1),
                q_document=None if q_document is None else _host_i32(q_document, "q_document"),
                k_document=None if k_document is None else _host_i32(k_document, "k_document"),
                grid=None if grid is None else _grid(**grid),
                token_order=None if token_order is None else _host_i32(token_order, "token_order"))


# Generators (include/omniattn/sparse.hpp). Geometry keywords: q_tokens, k_tokens (default q_tokens), batch,
# heads (mask heads: 1, Hkv or Hq), block_size (64 or 128, or a (block_q, block_k) pair).

def sliding_window(left: int, right: int, *, q_tokens: int, k_tokens: Optional[int] = None, batch: int = 1,
                   heads: int = 1, block_size: BlockSize = 128) -> BlockMask:
    """Keys in [d - left, d + right] around the bottom-right diagonal d = i + Sk - Sq (-1: unbounded)."""
    return BlockMask(_native.sliding_window(_geometry(q_tokens, k_tokens, batch, heads, block_size), left, right))


def sinks_window(sinks: int, left: int, *, q_tokens: int, k_tokens: Optional[int] = None, batch: int = 1,
                 heads: int = 1, block_size: BlockSize = 128) -> BlockMask:
    """StreamingLLM: the first `sinks` keys plus a causal window of `left` keys before the diagonal."""
    return BlockMask(_native.sinks_window(_geometry(q_tokens, k_tokens, batch, heads, block_size), sinks, left))


def prefix_lm(prefix: int, *, q_tokens: int, k_tokens: Optional[int] = None, batch: int = 1, heads: int = 1,
              block_size: BlockSize = 128) -> BlockMask:
    """Keys j < prefix visible to every query, causal after that."""
    return BlockMask(_native.prefix_lm(_geometry(q_tokens, k_tokens, batch, heads, block_size), prefix))


def documents(lengths: Sequence[int], *, causal: bool = False, batch: int = 1, heads: int = 1,
              block_size: BlockSize = 128) -> BlockMask:
    """Packed documents of these lengths in one sequence (tokens = their sum): each query sees its own
    document's keys (causally when `causal`)."""
    lengths = [int(n) for n in lengths]
    total = sum(lengths)
    return BlockMask(_native.documents(_geometry(total, total, batch, heads, block_size), lengths, causal))


def dilated_blocks(window_blocks: int, dilation: int, *, causal: bool = False, q_tokens: int, batch: int = 1,
                   heads: int = 1, block_size: int = 128) -> BlockMask:
    """Block level (self-attention): query block qb sees KV block kb when |qb - kb| is a multiple of `dilation`
    below window_blocks·dilation (kb <= qb when causal, the diagonal block causal inside)."""
    g = _geometry(q_tokens, q_tokens, batch, heads, block_size)
    return BlockMask(_native.dilated_blocks(g, window_blocks, dilation, causal))


def power_of_two_blocks(*, sink_blocks: int = 0, q_tokens: int, batch: int = 1, heads: int = 1,
                        block_size: int = 128) -> BlockMask:
    """PowerAttention (block level, causal): query block qb sees KV blocks qb - δ for δ = 0 and every power of
    two, plus the first `sink_blocks` blocks."""
    return BlockMask(_native.power_of_two_blocks(_geometry(q_tokens, q_tokens, batch, heads, block_size),
                                                 sink_blocks))


def head_windows(windows: Sequence[Sequence[int]], *, q_tokens: int, k_tokens: Optional[int] = None,
                 batch: int = 1, block_size: BlockSize = 128) -> BlockMask:
    """MoA / MASFormer: one (left, right, sinks) window per mask head (heads = len(windows)); -1 unbounded."""
    rows = [tuple(int(x) for x in w) for w in windows]
    if any(len(w) != 3 for w in rows):
        raise ValueError(f"windows: expected (left, right, sinks) per head, given {windows!r}")
    return BlockMask(_native.head_windows(_geometry(q_tokens, k_tokens, batch, len(rows), block_size), rows))


def neighborhood(shape: Sequence[int], kernel: Any, *, dilation: Any = 1, stride: Any = 1, causal: Any = False,
                 token_order: Any = None, batch: int = 1, heads: int = 1, block_size: BlockSize = 128) -> BlockMask:
    """NATTEN's neighborhood attention on a 1-3-D token grid (tokens = prod(shape)); kernel, dilation, stride and
    causal per axis (one value for all). `token_order` (e.g. tile_order(shape, tile)): the grid index of the token
    at each sequence position, so that 2-D/3-D windows fill dense blocks; permute q/k/v with permute_tokens."""
    grid = _grid("neighborhood", shape, kernel, dilation, stride, causal)
    order = None if token_order is None else _host_i32(token_order, "token_order")
    return BlockMask(_native.neighborhood(_geometry(grid.tokens, grid.tokens, batch, heads, block_size), grid, order))


def axial(shape: Sequence[int], *, causal: Any = False, token_order: Any = None, batch: int = 1, heads: int = 1,
          block_size: BlockSize = 128) -> BlockMask:
    """Axial attention: each token sees the tokens of its lines along every axis (causal per axis: coordinates
    <= the query's only)."""
    grid = _grid("axial", shape, causal=causal)
    order = None if token_order is None else _host_i32(token_order, "token_order")
    return BlockMask(_native.axial(_geometry(grid.tokens, grid.tokens, batch, heads, block_size), grid, order))


# Token orders (position -> grid index, int32 numpy) --------------------------------------------------------

def tile_order(shape: Sequence[int], tile: Any, *, dilation: Any = 1) -> np.ndarray:
    """Tokens grouped by dilation group, then in tiles of `tile` tokens per axis (row-major, edge tiles cut)."""
    grid = _grid("neighborhood", shape, 1, dilation)
    n = _ndim(shape)
    tiles = [int(t) for t in _per_axis(tile, n, "tile")] + [1] * (3 - n)
    return _native.tile_order(grid, tiles)


def hilbert_order(shape: Sequence[int]) -> np.ndarray:
    """A Hilbert-curve order of a 2-D or 3-D grid (any shape)."""
    return _native.hilbert_order(_grid("neighborhood", shape))


def inverse_order(order: Any) -> np.ndarray:
    """inverse[order[p]] = p."""
    return _native.inverse_order(_host_i32(order, "order"))


def permute_tokens(x: Any, order: Any) -> Any:
    """A copy of x ([B, S, H, D] or [S, H, D]) with out[.., p, ..] = x[.., order[p], ..]: to a grid mask's
    sequence order with order = mask.token_order, back with inverse_order(order). torch tensors (any device)
    use index_select (differentiable); host arrays use the library's copy."""
    from ._frameworks import is_torch

    if is_torch(x):
        import torch

        index = torch.as_tensor(_host_i32(order, "order"), device=x.device).long()
        return x.index_select(x.dim() - 3, index)
    a = np.asarray(x)
    out = np.empty_like(a)
    _native.permute_tokens(a, out, _host_i32(order, "order"))
    return out


from ._graph import graph_attention  # noqa: E402  (it needs nothing from here but shares the namespace)

__all__ = ["BlockMask", "sliding_window", "sinks_window", "prefix_lm", "documents", "dilated_blocks",
           "power_of_two_blocks", "head_windows", "neighborhood", "axial", "tile_order", "hilbert_order",
           "inverse_order", "permute_tokens", "graph_attention"]
