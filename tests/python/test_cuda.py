"""The same APIs on CUDA tensors (bf16/f16, the CUDA backends' head dims), streams honoured.
Skipped without a CUDA device; run on the GPU machine by `make gpu-check`."""
import pytest
import torch

import omniattn
from omniattn.flash_attn_interface import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache
from reference import assert_close, attention_ref, requires_cuda, varlen_ref

pytestmark = requires_cuda
DEV = "cuda"


def rand(*shape, dtype=torch.bfloat16, device=DEV):
    return torch.randn(*shape, device=device).to(dtype)


def check_forward(q, k, v, **opts):
    out, lse = omniattn.attention(q, k, v, return_lse=True, **opts)
    ref, ref_lse = attention_ref(q, k, v, **opts)
    naive, naive_lse = attention_ref(q, k, v, dtype=q.dtype, **opts)
    assert out.device == q.device and lse.device == q.device
    assert_close(out, naive, ref, q.dtype, "out")
    assert_close(lse, naive_lse.float(), ref_lse, torch.float32, "lse")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("sq,sk", [(1, 1), (17, 17), (113, 239), (799, 799)])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
def test_forward(dtype, sq, sk, d, causal):
    check_forward(rand(2, sq, 8, d, dtype=dtype), rand(2, sk, 2, d, dtype=dtype), rand(2, sk, 2, d, dtype=dtype),
                  causal=causal)


@pytest.mark.parametrize("opts", [
    dict(window=(64, 0), sinks=4), dict(causal=True, softcap=10.0), dict(window=(31, 17)),
    dict(causal=True, alibi_slopes="alibi"), dict(causal=True, sink_logits="sinks"),
], ids=str)
def test_forward_options(opts):
    opts = dict(opts)
    if opts.get("alibi_slopes") == "alibi":
        opts["alibi_slopes"] = torch.rand(8, device=DEV)
    if opts.get("sink_logits") == "sinks":
        opts["sink_logits"] = torch.randn(8, device=DEV)
    check_forward(rand(2, 300, 8, 128), rand(2, 300, 1, 128), rand(2, 300, 1, 128), **opts)


def test_varlen_on_device():
    cu_q = torch.tensor([0, 1, 130, 130, 900], dtype=torch.int32, device=DEV)
    cu_k = torch.tensor([0, 17, 146, 200, 970], dtype=torch.int32, device=DEV)
    q, k, v = rand(900, 8, 64), rand(970, 2, 64), rand(970, 2, 64)
    out = flash_attn_varlen_func(q, k, v, cu_q, cu_k, 770, 770, causal=True)
    ref, _ = varlen_ref(q, k, v, cu_q.cpu(), cu_k.cpu(), causal=True)
    naive, _ = varlen_ref(q, k, v, cu_q.cpu(), cu_k.cpu(), causal=True, dtype=q.dtype)
    assert_close(out, naive, ref, q.dtype, "varlen")


@pytest.mark.parametrize("deterministic", [False, True])
def test_backward(deterministic):
    q, k, v = (rand(*s).requires_grad_() for s in ((2, 257, 8, 128), (2, 311, 2, 128), (2, 311, 2, 128)))
    out = flash_attn_func(q, k, v, causal=True, deterministic=deterministic)
    dout = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    ref_in = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_grads = torch.autograd.grad(attention_ref(*ref_in, causal=True)[0], ref_in, dout.double())
    naive_in = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    naive_grads = torch.autograd.grad(attention_ref(*naive_in, causal=True, dtype=q.dtype)[0], naive_in, dout)
    for name, g, n, r in zip("qkv", grads, naive_grads, ref_grads):
        assert_close(g, n, r, q.dtype, f"d{name}")
    if deterministic:
        again = torch.autograd.grad(flash_attn_func(q, k, v, causal=True, deterministic=True), (q, k, v), dout)
        assert all(torch.equal(a, b) for a, b in zip(grads, again))


def test_current_stream_is_honoured():
    # q is written on a side stream after a long sleep; the attention is enqueued on that same (current)
    # stream, so it must read the written values, never the NaN the buffer held before.
    src, k, v = rand(1, 512, 8, 128), rand(1, 512, 8, 128), rand(1, 512, 8, 128)
    q = torch.full_like(src, float("nan"))
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)
        q.copy_(src)
        out = omniattn.attention(q, k, v, causal=True)
    side.synchronize()
    ref, _ = attention_ref(src, k, v, causal=True)
    naive, _ = attention_ref(src, k, v, causal=True, dtype=src.dtype)
    assert_close(out, naive, ref, src.dtype, "out on a side stream")


def test_compile_fullgraph_on_device():
    def step(q, k, v):
        return (omniattn.attention(q, k, v, causal=True).float() ** 2).mean()

    compiled = torch.compile(step, fullgraph=True)
    inputs = [rand(2, 100, 4, 64).requires_grad_() for _ in range(3)]
    loss = compiled(*inputs)
    loss.backward()
    eager_in = [t.detach().clone().requires_grad_() for t in inputs]
    eager = step(*eager_in)
    eager.backward()
    torch.testing.assert_close(loss, eager)
    for a, b in zip(inputs, eager_in):
        torch.testing.assert_close(a.grad, b.grad)


def test_kvcache_on_device():
    k_cache, v_cache = rand(2, 1024, 2, 128), rand(2, 1024, 2, 128)
    seqlens = torch.tensor([100, 1000], dtype=torch.int32, device=DEV)
    q, k_new, v_new = rand(2, 1, 16, 128), rand(2, 1, 2, 128), rand(2, 1, 2, 128)
    out = flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=seqlens, causal=True)
    for i, n in enumerate(seqlens.tolist()):
        assert torch.equal(k_cache[i, n], k_new[i, 0])
        keys, values = k_cache[i:i + 1, :n + 1], v_cache[i:i + 1, :n + 1]
        ref, _ = attention_ref(q[i:i + 1], keys, values, causal=True)
        naive, _ = attention_ref(q[i:i + 1], keys, values, causal=True, dtype=q.dtype)
        assert_close(out[i:i + 1], naive, ref, q.dtype, f"kvcache {i}")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_second_device():
    q, k, v = (rand(1, 77, 4, 64, device="cuda:1") for _ in range(3))
    with torch.cuda.device(0):
        check_forward(q, k, v, causal=True)


def test_unsupported_on_device_raises():
    q = rand(1, 8, 2, 64, dtype=torch.float32)
    with pytest.raises(NotImplementedError, match="bf16 and f16"):
        omniattn.attention(q, q, q)
