"""The same APIs on CUDA tensors (bf16/f16, the CUDA backends' head dims), streams honoured; block masks (uploaded
once per device), decode over paged caches, kv_cache_append with rotary, flash_attn_with_kvcache, cupy and jax.
Skipped without a CUDA device; run on the GPU machine by `make gpu-check`."""
import numpy as np
import pytest
import torch

import mask_oracles as oracle
import omniattn
from omniattn import sparse
from omniattn.flash_attn_interface import flash_attn_func, flash_attn_varlen_func, flash_attn_with_kvcache
from reference import (assert_close, attention_ref, decode_ref, gather_cache, requires_cuda, rotary_ref,
                       varlen_ref)

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


# Block masks ------------------------------------------------------------------------------------------------

def sparse_or_skip(fn):
    """Runs fn. The CUDA kernels run block masks (sm80 forward/backward, sm90a forward, verified on an H200): a
    refusal is a failure, not a skip."""
    return fn()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", ["window", "documents", "neighborhood"])
def test_block_mask_forward_on_device(dtype, case):
    if case == "window":
        mask, dense, n = sparse.sliding_window(300, 0, q_tokens=1000), oracle.window(1000, 1000, 300, 0), 1000
    elif case == "documents":
        lengths = [200, 1, 500, 299]
        mask, dense, n = sparse.documents(lengths, causal=True, block_size=64), oracle.documents(lengths, True), 1000
    else:
        shape, kernel = (24, 24), (7, 7)
        order = sparse.tile_order(shape, (8, 8))
        mask = sparse.neighborhood(shape, kernel, token_order=order, block_size=64)
        dense = oracle.permuted(oracle.neighborhood(shape, kernel, (1, 1), (1, 1), (False, False)), order)
        n = 576
    q, k, v = rand(2, n, 8, 128, dtype=dtype), rand(2, n, 2, 128, dtype=dtype), rand(2, n, 2, 128, dtype=dtype)
    out, lse = sparse_or_skip(lambda: omniattn.attention(q, k, v, block_mask=mask, return_lse=True))
    assert mask.devices == ([q.device.index] if q.is_cuda else [])  # uploaded once, kept on the mask
    ref, ref_lse = attention_ref(q, k, v, mask=dense)
    naive, naive_lse = attention_ref(q, k, v, mask=dense, dtype=dtype)
    assert_close(out, naive, ref, dtype, f"{case} out")
    assert_close(lse, naive_lse.float(), ref_lse, torch.float32, f"{case} lse")
    assert torch.equal(omniattn.attention(q, k, v, block_mask=mask), out) and len(mask.devices) == q.is_cuda


def test_block_mask_backward_and_compile_on_device():
    mask = sparse.sinks_window(4, 200, q_tokens=700, block_size=(128, 64)).to(DEV)
    dense = oracle.window(700, 700, 200, 0, sinks=4)
    q, k, v = (rand(1, 700, h, 64).requires_grad_() for h in (4, 2, 2))
    out = sparse_or_skip(lambda: omniattn.attention(q, k, v, block_mask=mask))
    dout = torch.randn_like(out)
    grads = sparse_or_skip(lambda: torch.autograd.grad(out, (q, k, v), dout))
    ref_in = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref = torch.autograd.grad(attention_ref(*ref_in, mask=dense)[0], ref_in, dout.double())
    naive_in = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    naive = torch.autograd.grad(attention_ref(*naive_in, mask=dense, dtype=q.dtype)[0], naive_in, dout)
    for name, g, n, r in zip("qkv", grads, naive, ref):
        assert_close(g, n, r, q.dtype, f"block-sparse d{name}")

    def loss_fn(q, k, v):
        return (omniattn.attention(q, k, v, block_mask=mask).float() ** 2).mean()

    compiled = torch.compile(loss_fn, fullgraph=True)
    comp_in = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    eager_in = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    compiled(*comp_in).backward()
    loss_fn(*eager_in).backward()
    for a, b in zip(comp_in, eager_in):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_block_mask_on_two_devices():
    mask = sparse.sliding_window(64, 0, q_tokens=256)
    for dev in ("cuda:0", "cuda:1"):
        q = rand(1, 256, 2, 64, device=dev)
        out = sparse_or_skip(lambda: omniattn.attention(q, q, q, block_mask=mask))
        ref, _ = attention_ref(q, q, q, mask=oracle.window(256, 256, 64, 0))
        naive, _ = attention_ref(q, q, q, mask=oracle.window(256, 256, 64, 0), dtype=q.dtype)
        assert_close(out, naive, ref, q.dtype, dev)
    assert mask.devices == [0, 1]


# Decode -----------------------------------------------------------------------------------------------------

def paged(lens, page_size, hkv, d, dtype=torch.bfloat16):
    """A shuffled page pool on the device; unused table entries -1."""
    per_seq = [-(-n // page_size) for n in lens]
    pool = sum(per_seq) + 2
    k, v = rand(pool, page_size, hkv, d, dtype=dtype), rand(pool, page_size, hkv, d, dtype=dtype)
    perm = torch.randperm(pool).tolist()
    table = torch.full((len(lens), max(per_seq) + 1), -1, dtype=torch.int32)
    for b, n in enumerate(per_seq):
        for p in range(n):
            table[b, p] = perm.pop()
    return k, v, table.to(DEV)


@pytest.mark.parametrize("page_size", [16, 256, 0])
@pytest.mark.parametrize("schedule", ["auto", "no_split", "split_kv", "stream_k"])
def test_decode_on_device(page_size, schedule):
    lens = torch.tensor([1, 1000, 4097, 0, 300], dtype=torch.int32, device=DEV)
    if page_size:
        k, v, table = paged(lens.tolist(), page_size, 4, 128)
    else:
        k, v, table = rand(5, 4200, 4, 128), rand(5, 4200, 4, 128), None
    q = rand(5, 4, 16, 128)
    out, lse = omniattn.attention_decode(q, k, v, lens, table, causal=True, schedule=schedule, return_lse=True)
    ref, ref_lse = decode_ref(q, k, v, lens.cpu(), table, causal=True)
    naive, naive_lse = decode_ref(q, k, v, lens.cpu(), table, causal=True, dtype=q.dtype)
    assert_close(out, naive, ref, q.dtype, f"decode page {page_size} {schedule}")
    assert_close(lse, naive_lse.float(), ref_lse, torch.float32, f"decode lse page {page_size} {schedule}")


def test_decode_options_and_bad_tables_on_device():
    lens = torch.tensor([700, 33], dtype=torch.int32, device=DEV)
    k, v, table = paged(lens.tolist(), 64, 2, 64, torch.float16)
    q = rand(2, 2, 8, 64, dtype=torch.float16)
    opts = dict(window=(100, 0), sinks=4, softcap=8.0, alibi_slopes=torch.rand(8, device=DEV))
    out = omniattn.attention_decode(q, k, v, lens, table, causal=True, host_seqlens=lens.cpu(), **opts)
    ref, _ = decode_ref(q, k, v, lens.cpu(), table, causal=True, **opts)
    naive, _ = decode_ref(q, k, v, lens.cpu(), table, causal=True, dtype=q.dtype, **opts)
    assert_close(out, naive, ref, q.dtype, "decode options")
    bad = table.clone()
    bad[1, 0] = 10_000
    with pytest.raises(ValueError, match="cache.host_block_table: expected page ids"):
        omniattn.attention_decode(q, k, v, lens, bad, host_block_table=bad.cpu())
    out = omniattn.attention_decode(q, k, v, lens, bad)  # no host copy: the kernel flags the sequence with NaN
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()


def test_append_with_rotary_on_device_matches_the_cpu():
    lens = torch.tensor([3, 500], dtype=torch.int32)
    k, v, table = paged([n + 2 for n in lens.tolist()], 16, 2, 128)
    k_new, v_new, q = rand(2, 2, 2, 128), rand(2, 2, 2, 128), rand(2, 2, 8, 128)
    cos, sin = torch.randn(1024, 32, device=DEV), torch.randn(1024, 32, device=DEV)
    cpu = [t.cpu().clone() for t in (k, v, lens, k_new, v_new, table, cos, sin, q)]
    dev_lens, q_dev = lens.to(DEV), q.clone()
    omniattn.kv_cache_append(k, v, k_new, v_new, dev_lens, table, rotary_cos=cos, rotary_sin=sin, q=q_dev)
    ck, cv, clens, ckn, cvn, ctable, ccos, csin, cq = cpu
    omniattn.kv_cache_append(ck, cv, ckn, cvn, clens, ctable, rotary_cos=ccos, rotary_sin=csin, q=cq)
    assert dev_lens.tolist() == clens.tolist() == [5, 502]
    positions = (clens - 2).long()[:, None] + torch.arange(2)
    assert_close(q_dev.cpu(), cq, rotary_ref(q.cpu(), ccos, csin, positions, False), q.dtype, "q rotated")
    assert_close(k.cpu(), ck, ck.double(), q.dtype, "cache k: CUDA vs CPU append")
    assert torch.equal(v.cpu(), cv)


@pytest.mark.parametrize("page_size", [16, 256])
def test_flash_attn_with_kvcache_paged_rotary_on_device(page_size):
    lens = torch.tensor([0, 255, 1500], dtype=torch.int32, device=DEV)
    k_cache, v_cache, table = paged([n + 1 for n in lens.tolist()], page_size, 8, 128)
    q, k_new, v_new = rand(3, 1, 32, 128), rand(3, 1, 8, 128), rand(3, 1, 8, 128)
    cos, sin = torch.randn(2048, 64, device=DEV), torch.randn(2048, 64, device=DEV)
    out = flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, rotary_cos=cos, rotary_sin=sin,
                                  cache_seqlens=lens, block_table=table, causal=True)
    q_rot = rotary_ref(q, cos, sin, lens.long()[:, None], True).to(q.dtype)
    ref, _ = decode_ref(q_rot, k_cache, v_cache, (lens + 1).cpu(), table, causal=True)
    naive, _ = decode_ref(q_rot, k_cache, v_cache, (lens + 1).cpu(), table, causal=True, dtype=q.dtype)
    assert_close(out, naive, ref, q.dtype, f"flash_attn_with_kvcache page {page_size}")


def test_varlen_paged_on_device():
    lens_k = [300, 0, 1000]
    k_pages, v_pages, table = paged(lens_k, 64, 2, 128)
    cu_q = torch.tensor([0, 100, 101, 301], dtype=torch.int32, device=DEV)
    cu_k = torch.tensor([0, 300, 300, 1300], dtype=torch.int32, device=DEV)
    q = rand(301, 8, 128)
    out = flash_attn_varlen_func(q, k_pages, v_pages, cu_q, cu_k, 200, 1000, causal=True, block_table=table)
    keys = torch.cat([gather_cache(k_pages, n, table[b])[0] for b, n in enumerate(lens_k)])
    values = torch.cat([gather_cache(v_pages, n, table[b])[0] for b, n in enumerate(lens_k)])
    ref, _ = varlen_ref(q, keys, values, cu_q.cpu(), cu_k.cpu(), causal=True)
    naive, _ = varlen_ref(q, keys, values, cu_q.cpu(), cu_k.cpu(), causal=True, dtype=q.dtype)
    assert_close(out, naive, ref, q.dtype, "varlen paged")


def test_decode_honours_the_current_stream():
    lens = torch.tensor([2000], dtype=torch.int32, device=DEV)
    k, v = rand(1, 2048, 2, 128), rand(1, 2048, 2, 128)
    src = rand(1, 1, 8, 128)
    q = torch.full_like(src, float("nan"))
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)
        q.copy_(src)
        out = omniattn.attention_decode(q, k, v, 2000)  # an int: the package passes its host copy
    side.synchronize()
    ref, _ = decode_ref(src, k, v, lens.cpu())
    naive, _ = decode_ref(src, k, v, lens.cpu(), dtype=src.dtype)
    assert_close(out, naive, ref, src.dtype, "decode on a side stream")


# Other frameworks ------------------------------------------------------------------------------------------

def test_cupy_arrays():
    cupy = pytest.importorskip("cupy")
    q, k, v = rand(1, 200, 4, 64), rand(1, 200, 2, 64), rand(1, 200, 2, 64)
    want = omniattn.attention(q, k, v, causal=True)
    cq, ck, cv = (cupy.from_dlpack(t.float()) for t in (q, k, v))
    out = omniattn.attention(cq.astype(cupy.float16), ck.astype(cupy.float16), cv.astype(cupy.float16),
                             causal=True)
    assert isinstance(out, cupy.ndarray) and out.dtype == cupy.float16
    ref, _ = attention_ref(q.half(), k.half(), v.half(), causal=True)
    naive, _ = attention_ref(q.half(), k.half(), v.half(), causal=True, dtype=torch.float16)
    assert_close(torch.from_dlpack(out), naive, ref, torch.float16, "cupy out")
    assert want.shape == tuple(out.shape)


def test_jax_gpu_arrays():
    jax = pytest.importorskip("jax")
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("jax has no GPU backend here")
    q = rand(1, 100, 2, 64)
    jq = jax.device_put(np.asarray(q.float().cpu()), gpu).astype(jax.numpy.bfloat16)
    out = omniattn.attention(jq, jq, jq, causal=True)
    assert isinstance(out, jax.Array) and list(out.devices())[0].platform == "gpu"
    np.testing.assert_array_equal(np.asarray(out.astype(jax.numpy.float32)),
                                  omniattn.attention(q, q, q, causal=True).float().cpu().numpy())
