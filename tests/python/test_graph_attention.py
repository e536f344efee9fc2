"""omniattn.sparse.graph_attention (token-level CSR graph, CPU): forward and gradients against the float64
reference with the graph as a dense element mask, numpy, torch.compile and validation errors."""
import numpy as np
import pytest
import torch

from omniattn.sparse import graph_attention
from reference import assert_close, attention_ref


def random_graph(nq, nk, p):
    """CSR of a random graph (strictly increasing keys per row; some rows empty) and its dense mask."""
    dense = torch.rand(nq, nk) < p
    dense[3] = False  # a node without edges: out 0, lse -inf
    rows = torch.zeros(nq + 1, dtype=torch.int32)
    rows[1:] = dense.sum(1).cumsum(0)
    cols = dense.nonzero()[:, 1].to(torch.int32)
    return rows, cols, dense


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_forward_and_gradients(dtype):
    rows, cols, dense = random_graph(97, 130, 0.1)
    q = torch.randn(97, 4, 16).to(dtype).requires_grad_()
    k, v = (torch.randn(130, 2, 16).to(dtype).requires_grad_() for _ in range(2))
    out, lse = graph_attention(q, k, v, rows, cols, softcap=5.0, return_lse=True)
    batched = lambda t: t[None]
    ref_in = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref, ref_lse = attention_ref(*map(batched, ref_in), mask=dense, softcap=5.0)
    naive_in = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    naive, naive_lse = attention_ref(*map(batched, naive_in), mask=dense, softcap=5.0, dtype=dtype)
    assert torch.all(out[3] == 0) and torch.all(lse[:, 3] == float("-inf"))
    assert_close(out, naive[0], ref[0], dtype, "graph out")
    assert_close(lse, naive_lse[0].float(), ref_lse[0], torch.float32, "graph lse")
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    ref_grads = torch.autograd.grad(ref[0], ref_in, dout.double())
    naive_grads = torch.autograd.grad(naive[0], naive_in, dout)
    for name, g, n, r in zip("qkv", grads, naive_grads, ref_grads):
        assert_close(g, n, r, dtype, f"graph d{name}")


def test_numpy_and_compile():
    rows, cols, dense = random_graph(40, 40, 0.2)
    q, k, v = (torch.randn(40, 2, 8) for _ in range(3))
    out = graph_attention(q.numpy(), k.numpy(), v.numpy(), rows.numpy(), cols.numpy().astype(np.int64), scale=0.5)
    assert isinstance(out, np.ndarray)
    ref, _ = attention_ref(q[None], k[None], v[None], mask=dense, scale=0.5)
    naive, _ = attention_ref(q[None], k[None], v[None], mask=dense, scale=0.5, dtype=torch.float32)
    assert_close(torch.from_numpy(out), naive[0], ref[0], torch.float32, "graph numpy")
    fn = lambda q, k, v: graph_attention(q, k, v, rows, cols, scale=0.5).sum()
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(q, k, v), fn(q, k, v))


def test_errors():
    q = torch.randn(3, 1, 8)
    with pytest.raises(ValueError, match="col_indices: expected strictly increasing keys per row"):
        graph_attention(q, q, q, torch.tensor([0, 2, 2, 2]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"row_offsets: expected 4 entries \(Nq \+ 1\)"):
        graph_attention(q, q, q, torch.tensor([0, 0]), torch.tensor([], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"col_indices: expected key nodes in \[0, 3\)"):
        graph_attention(q, q, q, torch.tensor([0, 1, 1, 1]), torch.tensor([5]))
