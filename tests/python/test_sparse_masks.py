"""omniattn.sparse: every generator's element-level visibility (BlockMask.to_dense) against an independent dense
oracle (mask_oracles.py), the block map and CSR lists, from_block_map/from_lists, token orders, permute_tokens,
and the errors the C++ validation raises."""
import numpy as np
import pytest
import torch

import mask_oracles as oracle
import omniattn
from omniattn import sparse


def dense(mask):
    return torch.from_numpy(mask.to_dense())


def assert_rule(mask, expected):
    """mask.to_dense() of batch 0 equals expected ([Sq, Sk] for every head, or [heads, Sq, Sk])."""
    got = dense(mask)
    assert got.shape[2:] == expected.shape[-2:]
    for h in range(got.shape[1]):
        want = expected if expected.dim() == 2 else expected[h]
        mismatch = (got[0, h] != want).nonzero()
        assert mismatch.numel() == 0, f"head {h}: {len(mismatch)} pairs differ, first (i, j) = {mismatch[0].tolist()}"


@pytest.mark.parametrize("block", [64, (64, 128), (128, 64)])
def test_1d_generators(block):
    assert_rule(sparse.sliding_window(37, 5, q_tokens=201, k_tokens=333, block_size=block),
                oracle.window(201, 333, 37, 5))
    assert_rule(sparse.sliding_window(-1, 0, q_tokens=150, block_size=block), oracle.window(150, 150, -1, 0))
    assert_rule(sparse.sinks_window(3, 20, q_tokens=190, block_size=block), oracle.window(190, 190, 20, 0, sinks=3))
    assert_rule(sparse.prefix_lm(70, q_tokens=170, block_size=block), oracle.window(170, 170, -1, 0, prefix=70))
    lengths = [17, 0, 130, 64, 1]
    assert_rule(sparse.documents(lengths, causal=True, block_size=block), oracle.documents(lengths, True))
    assert_rule(sparse.documents(lengths, block_size=block), oracle.documents(lengths, False))


def test_block_level_generators():
    assert_rule(sparse.dilated_blocks(3, 2, q_tokens=700, block_size=64), oracle.dilated(700, 64, 3, 2, False))
    assert_rule(sparse.dilated_blocks(2, 3, causal=True, q_tokens=700, block_size=64),
                oracle.dilated(700, 64, 2, 3, True))
    assert_rule(sparse.power_of_two_blocks(sink_blocks=1, q_tokens=900, block_size=64),
                oracle.power_of_two(900, 64, 1))


def test_head_windows_one_rule_per_head():
    windows = [(10, 0, 0), (-1, -1, 0), (5, 3, 2)]
    mask = sparse.head_windows(windows, q_tokens=140, block_size=64)
    assert mask.heads == 3
    assert_rule(mask, torch.stack([oracle.window(140, 140, l, r, s) for l, r, s in windows]))


@pytest.mark.parametrize("opts", [
    dict(shape=(23,), kernel=(7,), dilation=(2,), stride=(1,), causal=(False,)),
    dict(shape=(40,), kernel=(9,), dilation=(1,), stride=(3,), causal=(True,)),
    dict(shape=(9, 13), kernel=(3, 5), dilation=(2, 1), stride=(1, 2), causal=(False, True)),
    dict(shape=(4, 5, 6), kernel=(3, 3, 5), dilation=(1, 1, 1), stride=(1, 1, 1), causal=(True, False, False)),
], ids=lambda o: "x".join(map(str, o["shape"])))
def test_neighborhood_natten_semantics(opts):
    mask = sparse.neighborhood(opts["shape"], opts["kernel"], dilation=opts["dilation"], stride=opts["stride"],
                               causal=opts["causal"], block_size=64)
    assert mask.q_tokens == mask.k_tokens == int(np.prod(opts["shape"]))
    assert_rule(mask, oracle.neighborhood(**opts))


def test_neighborhood_in_tile_order_and_axial():
    shape, kernel = (16, 16), (5, 5)
    order = sparse.tile_order(shape, (8, 8))
    mask = sparse.neighborhood(shape, kernel, token_order=order, block_size=64)
    np.testing.assert_array_equal(mask.token_order, order)
    plain = oracle.neighborhood(shape, kernel, (1, 1), (1, 1), (False, False))
    assert_rule(mask, oracle.permuted(plain, order))
    # docs/sparse.md: 8x8 tiles make a 17x17 window on a 64x64 image list <= 9 blocks per query block, not 17.
    tiled = sparse.neighborhood((64, 64), 17, token_order=sparse.tile_order((64, 64), 8), block_size=64)
    rows = sparse.neighborhood((64, 64), 17, block_size=64)
    assert tiled.block_map().astype(bool).sum(-1).max() <= 9 and rows.block_map().astype(bool).sum(-1).max() == 17
    assert_rule(sparse.axial((6, 7), causal=(True, False), block_size=64), oracle.axial((6, 7), (True, False)))
    assert_rule(sparse.axial((3, 4, 5), block_size=64), oracle.axial((3, 4, 5), (False, False, False)))


def test_block_map_lists_and_round_trips():
    mask = sparse.sliding_window(100, 0, q_tokens=500, block_size=(64, 128), heads=2, batch=3)
    assert (mask.batch, mask.heads, mask.q_tokens, mask.k_tokens, mask.block_size) == (3, 2, 500, 500, (64, 128))
    bmap = mask.block_map()
    assert bmap.shape == (3, 2, 8, 4) and set(np.unique(bmap)) <= {0, 1, 2}
    assert mask.listed_blocks == int((bmap > 0).sum()) and mask.density == pytest.approx((bmap > 0).mean())
    lists = mask.lists()
    assert lists["kv_full"]["num_blocks"].sum() == (bmap == 2).sum()
    assert lists["q_partial"]["indices"].size == lists["kv_partial"]["indices"].size == (bmap == 1).sum()
    # The same blocks with the same element rule give the same mask.
    again = omniattn.BlockMask.from_block_map(bmap, q_tokens=500, k_tokens=500, block_size=(64, 128), window_left=100,
                                              window_right=0)
    np.testing.assert_array_equal(again.to_dense(), mask.to_dense())
    p, f = lists["kv_partial"], lists["kv_full"]
    from_lists = omniattn.BlockMask.from_lists(p["offsets"], p["indices"], f["offsets"], f["indices"], q_tokens=500,
                                               batch=3, heads=2, block_size=(64, 128), window_left=100,
                                               window_right=0)
    np.testing.assert_array_equal(from_lists.block_map(), bmap)
    assert "listed_blocks" in repr(mask)


def test_from_block_map_with_element_rules():
    n = 256
    docs = torch.tensor([0] * 100 + [1] * 156, dtype=torch.int32)
    bmap = torch.ones(4, 4, dtype=torch.uint8)  # every block partial: the element rule decides everything
    mask = omniattn.BlockMask.from_block_map(bmap, block_size=64, q_document=docs, k_document=docs, window_left=30,
                                             window_right=0, prefix=10)
    want = oracle.window(n, n, 30, 0, prefix=10) & (docs[:, None] == docs[None, :])
    assert_rule(mask, want)
    grid = dict(kind="neighborhood", shape=(16, 16), kernel=(3, 7), dilation=1, stride=1, causal=False)
    mask = omniattn.BlockMask.from_block_map(bmap, block_size=64, grid=grid)
    assert_rule(mask, oracle.neighborhood((16, 16), (3, 7), (1, 1), (1, 1), (False, False)))
    full = omniattn.BlockMask.from_block_map(torch.full((1, 2, 4, 4), 2), block_size=64)
    assert dense(full).all()


def test_token_orders():
    order = sparse.tile_order((6, 10), (4, 4))
    assert order.dtype == np.int32 and sorted(order.tolist()) == list(range(60))
    assert order[:4].tolist() == [0, 1, 2, 3] and order[4] == 10  # row-major inside the first 4x4 tile
    dil = sparse.tile_order((8, 8), (2, 2), dilation=2)
    assert all(t % 2 == 0 and (t // 8) % 2 == 0 for t in dil[:16])  # dilation group (0, 0) first
    h = sparse.hilbert_order((8, 8))
    xy = np.stack([h // 8, h % 8], 1)
    assert sorted(h.tolist()) == list(range(64)) and (np.abs(np.diff(xy, axis=0)).sum(1) == 1).all()
    assert sorted(sparse.hilbert_order((5, 3, 7)).tolist()) == list(range(105))
    inv = sparse.inverse_order(order)
    assert (inv[order] == np.arange(60)).all()


def test_permute_tokens_numpy_and_torch():
    order = sparse.tile_order((4, 6), (2, 3))
    x = torch.randn(2, 24, 3, 8)
    y = sparse.permute_tokens(x, order)
    assert torch.equal(y[:, 5], x[:, int(order[5])])
    assert torch.equal(sparse.permute_tokens(y, sparse.inverse_order(order)), x)
    yn = sparse.permute_tokens(x.numpy(), order)
    assert isinstance(yn, np.ndarray) and np.array_equal(yn, y.numpy())
    x3 = x[0].requires_grad_()
    sparse.permute_tokens(x3, order).sum().backward()  # differentiable for torch
    assert torch.equal(x3.grad, torch.ones_like(x3))


def test_mask_errors_carry_the_cpp_message():
    with pytest.raises(ValueError, match="geometry.block_q: expected 64 or 128, given 32"):
        sparse.sliding_window(4, 0, q_tokens=64, block_size=32)
    with pytest.raises(ValueError, match="windows: expected 2 \\(geometry.heads\\)|windows"):
        sparse.head_windows([(1, 0, 0), (2,)], q_tokens=64)
    with pytest.raises(ValueError, match="geometry"):
        sparse.neighborhood((8, 8), 3, batch=0)
    with pytest.raises(ValueError, match="kernel: expected one value or 2"):
        sparse.neighborhood((8, 8), (3, 3, 3))
    with pytest.raises(ValueError, match="order: expected a permutation of \\[0, 3\\)"):
        sparse.inverse_order([0, 0, 1])
    with pytest.raises(ValueError, match="strictly increasing"):
        omniattn.BlockMask.from_lists([0, 2, 2], [1, 0], [0, 0, 0], [], q_tokens=256)
    with pytest.raises(ValueError, match="map: expected values 0, 1 or 2"):
        omniattn.BlockMask.from_block_map(np.full((2, 2), 3), block_size=64)
    with pytest.raises(ValueError, match="q_document, k_document: expected both or neither"):
        omniattn.BlockMask.from_block_map(np.ones((1, 1)), block_size=64, q_document=np.zeros(64, dtype=np.int32))
    with pytest.raises(TypeError, match="token_order: expected integers"):
        sparse.neighborhood((8, 8), 3, token_order=np.zeros(64))
