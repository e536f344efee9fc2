"""torch.compile(fullgraph=True) traces through the custom ops; their fake kernels and schemas pass opcheck."""
import pytest
import torch
from torch.library import opcheck

import omniattn
from omniattn.flash_attn_interface import flash_attn_varlen_func


def test_opcheck_fwd_and_bwd():
    q, k, v = torch.randn(2, 9, 4, 16), torch.randn(2, 11, 2, 16), torch.randn(2, 11, 2, 8)
    for t in (q, k, v):
        t.requires_grad_()
    args = (q, k, v, None, torch.randn(4), None, None, None, True, -1, -1, 0, 0.0, None, "auto", False)
    opcheck(torch.ops.omniattn.fwd.default, args)
    out, lse = torch.ops.omniattn.fwd(*args)
    dout = torch.randn_like(out)
    opcheck(torch.ops.omniattn.bwd.default,
            (dout, q.detach(), k.detach(), v.detach(), out.detach(), lse, None, None, None, None, None, True, -1,
             -1, 0, 0.0, None, "auto", False), test_utils=("test_schema", "test_faketensor"))


def test_compile_fullgraph_forward_and_backward():
    def loss_fn(q, k, v, sink):
        out = omniattn.attention(q, k, v, causal=True, window=(7, 0), sink_logits=sink, softcap=8.0)
        return (out.float() ** 2).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    inputs = [torch.randn(2, 21, 4, 16), torch.randn(2, 21, 2, 16), torch.randn(2, 21, 2, 16), torch.randn(4)]
    eager_in = [t.clone().requires_grad_() for t in inputs]
    comp_in = [t.clone().requires_grad_() for t in inputs]
    eager = loss_fn(*eager_in)
    eager.backward()
    comp = compiled(*comp_in)
    comp.backward()
    # Same kernels, same inputs, deterministic CPU backward: identical results.
    assert torch.equal(eager, comp)
    for a, b in zip(eager_in, comp_in):
        assert torch.equal(a.grad, b.grad)


def test_compile_inductor_varlen():
    cu = torch.tensor([0, 5, 17], dtype=torch.int32)
    q, k, v = torch.randn(17, 2, 8), torch.randn(17, 2, 8), torch.randn(17, 2, 8)
    fn = lambda q, k, v: flash_attn_varlen_func(q * 2, k, v, cu, cu, 12, 12, causal=True) + 1
    compiled = torch.compile(fn, fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), fn(q, k, v), rtol=0, atol=0)


def test_compile_dynamic_shapes():
    compiled = torch.compile(lambda q, k, v: omniattn.attention(q, k, v, causal=True), fullgraph=True,
                             dynamic=True, backend="aot_eager")
    for s in (7, 13):
        q, k, v = torch.randn(1, s, 2, 8), torch.randn(1, s + 3, 2, 8), torch.randn(1, s + 3, 2, 8)
        assert torch.equal(compiled(q, k, v), omniattn.attention(q, k, v, causal=True))
