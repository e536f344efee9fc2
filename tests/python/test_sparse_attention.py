"""attention(..., block_mask=) on the CPU: forward and gradients against the float64 reference with the mask's
dense element rule (from the independent oracles), gradcheck in float64, torch.compile(fullgraph=True), numpy,
mask lifetime and the errors of a mask that does not fit the call."""
import gc

import numpy as np
import pytest
import torch

import mask_oracles as oracle
import omniattn
from omniattn import sparse
from reference import assert_close, attention_ref


def qkv(b, sq, sk, hq, hkv, d, dtype=torch.float32, grad=False):
    ts = (torch.randn(b, sq, hq, d), torch.randn(b, sk, hkv, d), torch.randn(b, sk, hkv, d))
    return tuple(t.to(dtype).requires_grad_(grad) for t in ts)


def check(q, k, v, mask, dense, **opts):
    out, lse = omniattn.attention(q, k, v, block_mask=mask, return_lse=True, **opts)
    ref, ref_lse = attention_ref(q, k, v, mask=dense, **opts)
    naive, naive_lse = attention_ref(q, k, v, mask=dense, dtype=q.dtype, **opts)
    assert_close(out, naive, ref, q.dtype, "block-sparse out")
    assert_close(lse, naive_lse.float(), ref_lse, torch.float32, "block-sparse lse")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_generators_forward(dtype):
    q, k, v = qkv(2, 211, 211, 4, 2, 32, dtype)
    check(q, k, v, sparse.sliding_window(40, 7, q_tokens=211, block_size=64), oracle.window(211, 211, 40, 7))
    check(q, k, v, sparse.sinks_window(4, 30, q_tokens=211, block_size=(64, 128)),
          oracle.window(211, 211, 30, 0, sinks=4))
    check(q, k, v, sparse.prefix_lm(50, q_tokens=211, block_size=64), oracle.window(211, 211, -1, 0, prefix=50))
    lengths = [100, 11, 100]
    check(q, k, v, sparse.documents(lengths, causal=True, block_size=64), oracle.documents(lengths, True))
    check(q, k, v, sparse.power_of_two_blocks(q_tokens=211, block_size=64), oracle.power_of_two(211, 64, 0))


def test_mask_and_options_are_anded():
    # The call's causal/window/softcap apply on top of the mask; Sq != Sk (bottom-right diagonal).
    q, k, v = qkv(1, 130, 300, 2, 1, 16)
    mask = sparse.sliding_window(-1, 20, q_tokens=130, k_tokens=300, block_size=64)
    check(q, k, v, mask, oracle.window(130, 300, -1, 20), causal=True, softcap=5.0)
    check(q, k, v, mask, oracle.window(130, 300, -1, 20), window=(70, 5), sinks=3, scale=0.3)


def test_heads_and_batch_masks():
    # One mask per KV head (its query heads share it), one per query head, and one per sequence.
    q, k, v = qkv(2, 150, 150, 6, 2, 16)
    wins = [(10, 0, 0), (-1, -1, 0)]
    per_kv = sparse.head_windows(wins, q_tokens=150, block_size=64)
    check(q, k, v, per_kv, torch.stack([oracle.window(150, 150, l, r, s) for l, r, s in wins])[None])
    wins6 = [(i * 7, i, i) for i in range(6)]
    per_q = sparse.head_windows(wins6, q_tokens=150, block_size=64)
    check(q, k, v, per_q, torch.stack([oracle.window(150, 150, l, r, s) for l, r, s in wins6])[None])
    bmap = torch.randint(0, 3, (2, 1, 3, 3))
    per_seq = omniattn.BlockMask.from_block_map(bmap, q_tokens=150, k_tokens=150, block_size=64, window_left=25,
                                                window_right=25)
    check(q, k, v, per_seq, torch.from_numpy(per_seq.to_dense()))


def test_neighborhood_2d_in_tile_order_end_to_end():
    # Q/K/V in grid order -> sequence (tile) order, masked attention, output back to grid order.
    shape, kernel = (12, 10), (5, 3)
    order = sparse.tile_order(shape, (8, 8))
    mask = sparse.neighborhood(shape, kernel, token_order=order, block_size=64)
    q, k, v = qkv(1, 120, 120, 2, 2, 16)
    seq = [sparse.permute_tokens(t, order) for t in (q, k, v)]
    out = sparse.permute_tokens(omniattn.attention(*seq, block_mask=mask), sparse.inverse_order(order))
    grid_rule = oracle.neighborhood(shape, kernel, (1, 1), (1, 1), (False, False))
    ref, _ = attention_ref(q, k, v, mask=grid_rule)
    naive, _ = attention_ref(q, k, v, mask=grid_rule, dtype=torch.float32)
    assert_close(out, naive, ref, torch.float32, "neighborhood in grid order")


def test_varlen_with_a_mask():
    # Positions are sequence-local; the mask covers the longest sequence.
    cu = torch.tensor([0, 70, 70, 200], dtype=torch.int32)
    q, k, v = (torch.randn(200, 2, 16) for _ in range(3))
    mask = sparse.sliding_window(16, 0, q_tokens=130, block_size=64)
    out = omniattn.attention(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, block_mask=mask)
    for b, (s, e) in enumerate([(0, 70), (70, 70), (70, 200)]):
        n = e - s
        ref, _ = attention_ref(q[None, s:e], k[None, s:e], v[None, s:e], mask=oracle.window(n, n, 16, 0))
        naive, _ = attention_ref(q[None, s:e], k[None, s:e], v[None, s:e], mask=oracle.window(n, n, 16, 0),
                                 dtype=torch.float32)
        assert_close(out[None, s:e], naive, ref, torch.float32, f"varlen sequence {b}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gradients_against_reference(dtype):
    q, k, v = qkv(2, 190, 190, 4, 2, 32, dtype, grad=True)
    mask = sparse.sinks_window(3, 50, q_tokens=190, block_size=64)
    dense = oracle.window(190, 190, 50, 0, sinks=3)
    out = omniattn.attention(q, k, v, block_mask=mask, softcap=6.0)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    ref_in = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref = torch.autograd.grad(attention_ref(*ref_in, mask=dense, softcap=6.0)[0], ref_in, dout.double())
    naive_in = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    naive = torch.autograd.grad(attention_ref(*naive_in, mask=dense, softcap=6.0, dtype=dtype)[0], naive_in, dout)
    for name, g, n, r in zip("qkv", grads, naive, ref):
        assert_close(g, n, r, dtype, f"block-sparse d{name}")


def test_gradcheck_float64():
    # The reference backend runs f64 with the block lists: skipped, partial and full blocks, then a documents mask
    # with causal. fast_mode checks random projections of the Jacobian (a few calls instead of one per input).
    q, k, v = (torch.randn(1, 70, h, 4, dtype=torch.float64, requires_grad=True) for h in (2, 1, 1))
    mask = omniattn.BlockMask.from_block_map([[0, 1], [2, 1]], q_tokens=70, block_size=64, window_left=3,
                                             window_right=1)
    assert torch.autograd.gradcheck(lambda q, k, v: omniattn.attention(q, k, v, block_mask=mask), (q, k, v),
                                    atol=1e-5, fast_mode=True)
    mask = sparse.documents([30, 40], causal=True, block_size=64)
    assert torch.autograd.gradcheck(lambda q, k, v: omniattn.attention(q, k, v, block_mask=mask, causal=True),
                                    (q, k, v), atol=1e-5, fast_mode=True)


def test_compile_fullgraph_with_a_mask():
    mask = sparse.sliding_window(30, 0, q_tokens=100, block_size=64)

    def loss_fn(q, k, v):
        return (omniattn.attention(q, k, v, block_mask=mask, sinks=2).float() ** 2).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    inputs = qkv(1, 100, 100, 2, 1, 16)
    eager_in = [t.clone().requires_grad_() for t in inputs]
    comp_in = [t.clone().requires_grad_() for t in inputs]
    eager = loss_fn(*eager_in)
    eager.backward()
    comp = compiled(*comp_in)
    comp.backward()
    assert torch.equal(eager, comp)
    for a, b in zip(eager_in, comp_in):
        assert torch.equal(a.grad, b.grad)
    # Another mask through the same compiled function: the graph is guarded on the handle, never stale.
    fn = torch.compile(lambda q, k, v, m: omniattn.attention(q, k, v, block_mask=m), fullgraph=True,
                       backend="aot_eager", dynamic=True)
    for left in (3, 40):
        other = sparse.sliding_window(left, 0, q_tokens=100, block_size=64)
        assert torch.equal(fn(*inputs, other), omniattn.attention(*inputs, block_mask=other))


def test_opcheck_with_a_mask_handle():
    mask = sparse.sliding_window(10, 0, q_tokens=40, block_size=64)
    q, k, v = qkv(1, 40, 40, 2, 2, 8, grad=True)
    torch.library.opcheck(torch.ops.omniattn.fwd.default,
                          (q, k, v, None, None, None, None, None, False, -1, -1, 0, 0.0, None, "auto", False,
                           mask._handle))


def test_numpy_inputs_and_backward():
    mask = sparse.sliding_window(12, 3, q_tokens=90, block_size=64)
    q, k, v = (t.numpy() for t in qkv(1, 90, 90, 2, 1, 16))
    out, lse = omniattn.attention(q, k, v, block_mask=mask, return_lse=True)
    assert isinstance(out, np.ndarray)
    t = [torch.from_numpy(a) for a in (q, k, v)]
    dense = oracle.window(90, 90, 12, 3)
    ref, _ = attention_ref(*t, mask=dense)
    assert_close(torch.from_numpy(out), attention_ref(*t, mask=dense, dtype=torch.float32)[0], ref, torch.float32,
                 "numpy out")
    dout = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    dq, dk, dv = omniattn.attention_backward(dout, q, k, v, out, lse, block_mask=mask)
    tq = torch.from_numpy(out)  # the torch path gives the same gradients (same kernels)
    auto = omniattn.attention_backward(torch.from_numpy(dout), *t, tq, torch.from_numpy(lse), block_mask=mask)
    for a, b in zip((dq, dk, dv), auto):
        np.testing.assert_array_equal(a, b.numpy())


def test_backward_survives_dropping_the_mask():
    q, k, v = qkv(1, 64, 64, 1, 1, 8, grad=True)
    mask = sparse.sliding_window(5, 0, q_tokens=64, block_size=64)
    out = omniattn.attention(q, k, v, block_mask=mask)
    handle = mask._handle
    del mask
    gc.collect()
    out.sum().backward()  # autograd holds the mask until backward
    assert q.grad is not None and torch.isfinite(q.grad).all()
    del out
    gc.collect()
    with pytest.raises(ValueError, match="block_mask: expected a live omniattn.BlockMask"):
        torch.ops.omniattn.fwd(q.detach(), k.detach(), v.detach(), None, None, None, None, None, False, -1, -1, 0,
                               0.0, None, "auto", False, handle)


def test_mask_that_does_not_fit_the_call():
    q, k, v = qkv(2, 100, 100, 4, 2, 16)
    with pytest.raises(ValueError, match="options.block_mask"):
        omniattn.attention(q, k, v, block_mask=sparse.sliding_window(5, 0, q_tokens=64, block_size=64))
    with pytest.raises(ValueError, match="options.block_mask"):
        omniattn.attention(q, k, v, block_mask=sparse.sliding_window(5, 0, q_tokens=100, heads=3))
    with pytest.raises(ValueError, match="options.block_mask"):
        omniattn.attention(q, k, v, block_mask=sparse.sliding_window(5, 0, q_tokens=100, batch=3))
    if not omniattn.with_cuda:
        with pytest.raises(NotImplementedError, match="a build with CUDA"):
            sparse.sliding_window(5, 0, q_tokens=100).to("cuda:0")
