"""Dense element-level oracles [Sq, Sk] (bool) of the mask generators, written from docs/sparse.md's rules and
independent of the library; the tests compare BlockMask.to_dense() and block-sparse attention against them."""
from __future__ import annotations

import torch


def _ij(sq, sk):
    return torch.arange(sq)[:, None], torch.arange(sk)[None, :]


def window(sq, sk, left, right, sinks=0, prefix=0):
    """Keys in [d - left, d + right] around d = i + sk - sq (-1 unbounded), or among the first `sinks`; keys
    below `prefix` always."""
    i, j = _ij(sq, sk)
    d = i + sk - sq
    ok = torch.ones(sq, sk, dtype=torch.bool)
    if right >= 0:
        ok &= j <= d + right
    if left >= 0:
        ok &= (j >= d - left) | (j < sinks)
    return ok | (j < prefix)


def documents(lengths, causal):
    ids = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    ok = ids[:, None] == ids[None, :]
    n = int(sum(lengths))
    return ok & window(n, n, -1, 0) if causal else ok


def block_level(n, block, rule):
    """Self-attention of n tokens where rule(qb, kb) decides each block pair: 0 none, 1 all, 2 causal inside."""
    blocks = -(-n // block)
    r = torch.tensor([[rule(x, y) for y in range(blocks)] for x in range(blocks)])
    i, j = _ij(n, n)
    per_pair = r[i // block, j // block]
    return (per_pair == 1) | ((per_pair == 2) & (j <= i))


def dilated(n, block, window_blocks, dilation, causal):
    def rule(x, y):
        dist = abs(x - y)
        if dist % dilation or dist >= window_blocks * dilation or (causal and y > x):
            return 0
        return 2 if causal and x == y else 1
    return block_level(n, block, rule)


def power_of_two(n, block, sink_blocks):
    def rule(x, y):
        if y > x:
            return 0
        dist = x - y
        if dist == 0:
            return 2
        return 1 if y < sink_blocks or (dist & (dist - 1)) == 0 else 0
    return block_level(n, block, rule)


def _axis_neighborhood(length, kernel, dilation, stride, causal):
    """[length, length] bool of one axis under NATTEN's rule (docs/sparse.md)."""
    ok = torch.zeros(length, length, dtype=torch.bool)
    for x in range(length):
        g = x % dilation
        n = -(-(length - g) // dilation)  # group length
        xq = x // dilation
        if causal:
            leader = min((xq // stride) * stride + stride - 1, n - 1)
            keys = [y for y in range(n) if y <= xq and leader - y < kernel]
        else:
            leader = min((xq // stride) * stride + stride // 2, n - 1)
            start = min(max(leader - kernel // 2, 0), n - kernel)
            keys = range(start, start + kernel)
        for y in keys:
            ok[x, y * dilation + g] = True
    return ok


def _grid_combine(shape, per_axis, combine_all):
    """Token-level [T, T] from per-axis [L, L] relations over row-major coordinates."""
    coords = torch.cartesian_prod(*[torch.arange(s) for s in shape]).reshape(-1, len(shape))
    rel = [None if per_axis[a] is None else per_axis[a][coords[:, a][:, None], coords[:, a][None, :]]
           for a in range(len(shape))]
    return combine_all(rel, coords)


def neighborhood(shape, kernel, dilation, stride, causal):
    axes = [_axis_neighborhood(shape[a], kernel[a], dilation[a], stride[a], causal[a]) for a in range(len(shape))]
    return _grid_combine(shape, axes, lambda rel, _: torch.stack(rel).all(0))


def axial(shape, causal):
    def combine(_, coords):
        same = coords[:, None, :] == coords[None, :, :]  # (T, T, ndim)
        differ = (~same).sum(-1)
        ok = differ == 0
        for a in range(len(shape)):
            line = (differ == 1) & ~same[..., a]
            if causal[a]:
                line &= coords[None, :, a] <= coords[:, None, a]
            ok |= line
        return ok
    return _grid_combine(shape, [None] * len(shape), combine)


def permuted(dense, order):
    """The oracle of a mask built with a token order: position p holds grid token order[p]."""
    order = torch.as_tensor(order).long()
    return dense[order][:, order]
