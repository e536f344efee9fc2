"""Gradients: gradcheck in float64 (the reference backend runs f64), the fast CPU backend's f32/bf16
gradients against the float64 reference with the derived tolerance, sink-logit gradients, attention_backward."""
import pytest
import torch

import omniattn
from reference import assert_close, attention_ref, varlen_ref


def leaf(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=torch.float64).to(dtype).requires_grad_()


@pytest.mark.parametrize("opts", [
    dict(), dict(causal=True), dict(window=(2, 1), sinks=1), dict(causal=True, softcap=1.5),
    dict(alibi_slopes=torch.tensor([0.3, 0.7])), dict(scale=0.5),
], ids=str)
def test_gradcheck_float64(opts):
    # LSE crosses in f32, so the analytical backward carries ~1e-7 relative error: within gradcheck's atol.
    q, k, v = leaf(2, 5, 2, 8), leaf(2, 7, 1, 8), leaf(2, 7, 1, 4)
    assert torch.autograd.gradcheck(lambda q, k, v: omniattn.attention(q, k, v, **opts), (q, k, v), atol=1e-5)


def test_gradcheck_float64_varlen():
    cu = torch.tensor([0, 3, 3, 8], dtype=torch.int32)
    q, k, v = leaf(8, 2, 4), leaf(8, 2, 4), leaf(8, 2, 4)
    fn = lambda q, k, v: omniattn.attention(q, k, v, causal=True, cu_seqlens_q=cu, cu_seqlens_k=cu)
    assert torch.autograd.gradcheck(fn, (q, k, v), atol=1e-5)


def test_sink_logit_gradient():
    # Sink logits are f32 in the library, so their gradient is checked against the float64 reference's.
    q, k, v = leaf(1, 6, 3, 8), leaf(1, 9, 3, 8), leaf(1, 9, 3, 8)
    sink = torch.randn(3, requires_grad=True)
    out = omniattn.attention(q, k, v, causal=True, sink_logits=sink)
    dout = torch.randn_like(out)
    out.backward(dout)
    sink64 = sink.detach().double().requires_grad_()
    ref, _ = attention_ref(q, k, v, causal=True, sink_logits=sink64)
    ref.backward(dout)
    assert sink.grad is not None and (sink.grad.double() - sink64.grad).abs().max() < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("opts", [dict(causal=True), dict(window=(9, 4), softcap=4.0)], ids=str)
def test_cpu_backend_gradients(dtype, opts):
    shapes = [(2, 113, 4, 32), (2, 79, 2, 32), (2, 79, 2, 16)]
    q, k, v = (leaf(*s, dtype=dtype) for s in shapes)
    out = omniattn.attention(q, k, v, **opts)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_grads = torch.autograd.grad(attention_ref(*ref_inputs, **opts)[0], ref_inputs, dout.double())
    naive_inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    naive_grads = torch.autograd.grad(attention_ref(*naive_inputs, dtype=dtype, **opts)[0], naive_inputs, dout)
    for name, g, n, r in zip("qkv", grads, naive_grads, ref_grads):
        assert g.dtype == dtype
        assert_close(g, n, r, dtype, f"d{name}")


def test_lse_is_not_differentiable():
    q, k, v = leaf(1, 4, 1, 8), leaf(1, 4, 1, 8), leaf(1, 4, 1, 8)
    out, lse = omniattn.attention(q, k, v, return_lse=True)
    assert out.requires_grad and not lse.requires_grad


def test_attention_backward_matches_autograd_and_is_deterministic():
    q, k, v = leaf(2, 17, 4, 16, dtype=torch.float32), leaf(2, 23, 2, 16, dtype=torch.float32), \
        leaf(2, 23, 2, 16, dtype=torch.float32)
    sink = torch.randn(4)
    out, lse = omniattn.attention(q, k, v, causal=True, sink_logits=sink, return_lse=True)
    dout = torch.randn_like(out)
    dq, dk, dv, dsink = omniattn.attention_backward(dout, q.detach(), k.detach(), v.detach(), out.detach(), lse,
                                                    causal=True, sink_logits=sink, deterministic=True)
    again = omniattn.attention_backward(dout, q.detach(), k.detach(), v.detach(), out.detach(), lse,
                                        causal=True, sink_logits=sink, deterministic=True)
    assert all(torch.equal(a, b) for a, b in zip((dq, dk, dv, dsink), again))
    auto = torch.autograd.grad(out, (q, k, v), dout)
    for a, b in zip((dq, dk, dv), auto):
        assert torch.equal(a, b)
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    sink64 = sink.double().requires_grad_()
    ref_out, _ = attention_ref(*ref_inputs, causal=True, sink_logits=sink64)
    ref_grads = torch.autograd.grad(ref_out, (*ref_inputs, sink64), dout.double())
    naive_inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    sink32 = sink.clone().requires_grad_()
    naive_out, _ = attention_ref(*naive_inputs, causal=True, sink_logits=sink32, dtype=torch.float32)
    naive_grads = torch.autograd.grad(naive_out, (*naive_inputs, sink32), dout)
    for name, g, n, r in zip(("dq", "dk", "dv", "dsink"), (dq, dk, dv, dsink), naive_grads, ref_grads):
        # d(sink) sums over every row with cancellation: the C++ tests' larger f32 floor.
        assert_close(g, n, r, torch.float32, name, f32_floor=1e-5 if name == "dsink" else 2e-6)


def test_varlen_gradients_f32():
    cu_q = torch.tensor([0, 17, 18, 50], dtype=torch.int32)
    cu_k = torch.tensor([0, 20, 41, 41], dtype=torch.int32)
    q, k, v = leaf(50, 4, 32, dtype=torch.float32), leaf(41, 2, 32, dtype=torch.float32), \
        leaf(41, 2, 32, dtype=torch.float32)
    out = omniattn.attention(q, k, v, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, causal=True)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_grads = torch.autograd.grad(varlen_ref(*ref_inputs, cu_q, cu_k, causal=True)[0], ref_inputs, dout.double())
    naive_inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    naive_grads = torch.autograd.grad(varlen_ref(*naive_inputs, cu_q, cu_k, causal=True, dtype=torch.float32)[0],
                                      naive_inputs, dout)
    for name, g, n, r in zip("qkv", grads, naive_grads, ref_grads):
        assert_close(g, n, r, torch.float32, f"varlen d{name}")
