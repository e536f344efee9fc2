"""omniattn.attention forward (CPU): float64 reference with the derived tolerance, SDPA, numpy and DLPack."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import omniattn
from reference import assert_close, attention_ref, varlen_ref

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def qkv(b, sq, sk, hq, hkv, d, dv, dtype):
    return (torch.randn(b, sq, hq, d).to(dtype), torch.randn(b, sk, hkv, d).to(dtype),
            torch.randn(b, sk, hkv, dv).to(dtype))


def check_forward(q, k, v, **opts):
    out, lse = omniattn.attention(q, k, v, return_lse=True, **opts)
    ref, ref_lse = attention_ref(q, k, v, **opts)
    naive, naive_lse = attention_ref(q, k, v, dtype=q.dtype, **opts)
    assert out.dtype == q.dtype and out.shape == ref.shape
    assert lse.dtype == torch.float32 and lse.shape == ref_lse.shape
    assert_close(out, naive, ref, q.dtype, "out")
    assert_close(lse, naive_lse.float(), ref_lse, torch.float32, "lse")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sq,sk", [(1, 1), (17, 17), (113, 79), (1, 239), (64, 17)])
@pytest.mark.parametrize("causal", [False, True])
def test_shapes(dtype, sq, sk, causal):
    check_forward(*qkv(2, sq, sk, 6, 3, 40, 24, dtype), causal=causal)


@pytest.mark.parametrize("opts", [
    dict(window=(8, 0)), dict(window=(5, 3)), dict(window=(4, -1), sinks=3), dict(causal=True, softcap=3.0),
    dict(scale=0.37), dict(causal=True, window=(16, 0), sinks=2, softcap=5.0), dict(window=(0, 0)),
], ids=str)
def test_masks_and_scores(opts):
    check_forward(*qkv(2, 57, 91, 4, 1, 32, 32, torch.float32), **opts)


def test_alibi_and_sink_logits():
    q, k, v = qkv(2, 33, 50, 4, 2, 16, 16, torch.bfloat16)
    check_forward(q, k, v, causal=True, alibi_slopes=torch.rand(4))
    check_forward(q, k, v, alibi_slopes=torch.rand(2, 4))
    check_forward(q, k, v, causal=True, sink_logits=torch.randn(4))


def test_rows_without_keys_give_zero_and_minus_inf():
    # Sq > Sk with causal: the first Sq - Sk queries see no key.
    q, k, v = qkv(1, 9, 4, 2, 2, 8, 8, torch.float32)
    out, lse = omniattn.attention(q, k, v, causal=True, return_lse=True)
    assert torch.all(out[:, :5] == 0) and torch.all(lse[:, :, :5] == float("-inf"))
    check_forward(q, k, v, causal=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_varlen_with_empty_sequences(dtype):
    lens_q, lens_k = [5, 0, 113, 1], [7, 3, 113, 0]
    cu_q = torch.tensor([0, *np.cumsum(lens_q)], dtype=torch.int32)
    cu_k = torch.tensor([0, *np.cumsum(lens_k)], dtype=torch.int32)
    q = torch.randn(sum(lens_q), 4, 32).to(dtype)
    k, v = torch.randn(sum(lens_k), 2, 32).to(dtype), torch.randn(sum(lens_k), 2, 32).to(dtype)
    out, lse = omniattn.attention(q, k, v, causal=True, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, return_lse=True)
    ref, ref_lse = varlen_ref(q, k, v, cu_q, cu_k, causal=True)
    naive, _ = varlen_ref(q, k, v, cu_q, cu_k, causal=True, dtype=dtype)
    assert lse.shape == (4, sum(lens_q))
    assert_close(out, naive, ref, dtype, "varlen out")
    assert_close(lse, ref_lse.float(), ref_lse, torch.float32, "varlen lse")


def test_seqused_k():
    q, k, v = qkv(3, 4, 40, 2, 2, 16, 16, torch.float32)
    used = torch.tensor([40, 1, 17], dtype=torch.int32)
    out = omniattn.attention(q, k, v, causal=True, seqused_k=used)
    for b, n in enumerate(used.tolist()):
        ref, _ = attention_ref(q[b:b + 1], k[b:b + 1, :n], v[b:b + 1, :n], causal=True)
        naive, _ = attention_ref(q[b:b + 1], k[b:b + 1, :n], v[b:b + 1, :n], causal=True, dtype=torch.float32)
        assert_close(out[b:b + 1], naive, ref, torch.float32, f"seqused_k sequence {b}")


@pytest.mark.parametrize("causal", [False, True])
def test_matches_sdpa(causal):
    q, k, v = qkv(2, 77, 77, 8, 2, 64, 64, torch.float32)
    out = omniattn.attention(q, k, v, causal=causal)
    sdpa = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                          is_causal=causal, enable_gqa=True).transpose(1, 2)
    ref, _ = attention_ref(q, k, v, causal=causal)
    # Both are f32 implementations: each within the f32 rule of the reference, hence close to each other.
    naive, _ = attention_ref(q, k, v, causal=causal, dtype=torch.float32)
    assert_close(out, naive, ref, torch.float32, "omniattn")
    assert_close(sdpa, naive, ref, torch.float32, "sdpa (sanity of the reference)")
    torch.testing.assert_close(out, sdpa, rtol=0, atol=4 * (out - ref).abs().max().item() + 1e-6)


def test_strided_inputs_cross_zero_copy():
    # [B, H, S, D] storage viewed as [B, S, H, D]: strides, not copies.
    base = torch.randn(2, 4, 31, 16)
    q = k = v = base.transpose(1, 2)
    check_forward(q, k, v, causal=True)
    # A non-contiguous head dim is copied (the library needs stride 1 there).
    check_forward(*(t.transpose(-1, -2).contiguous().transpose(-1, -2) for t in (q, k, v)))
    wide = torch.randn(2, 31, 4, 32)[..., ::2]
    check_forward(wide, wide, wide)


def test_reference_backend_and_float64():
    q, k, v = qkv(1, 13, 21, 2, 1, 8, 8, torch.float64)
    out = omniattn.attention(q, k, v, causal=True)
    ref, _ = attention_ref(q, k, v, causal=True)
    assert out.dtype == torch.float64 and (out - ref).abs().max() < 1e-12
    out32 = omniattn.attention(q.float(), k.float(), v.float(), causal=True, backend="reference")
    assert_close(out32, attention_ref(q.float(), k.float(), v.float(), causal=True, dtype=torch.float32)[0], ref,
                 torch.float32, "reference backend f32")


def test_numpy_in_numpy_out():
    q, k, v = qkv(2, 19, 23, 4, 2, 16, 8, torch.float32)
    out, lse = omniattn.attention(q.numpy(), k.numpy(), v.numpy(), causal=True, return_lse=True,
                                  alibi_slopes=np.linspace(0.1, 0.4, 4), sink_logits=np.zeros(4))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and isinstance(lse, np.ndarray)
    ref, ref_lse = attention_ref(q, k, v, causal=True, alibi_slopes=torch.linspace(0.1, 0.4, 4),
                                 sink_logits=torch.zeros(4))
    naive, _ = attention_ref(q, k, v, causal=True, alibi_slopes=torch.linspace(0.1, 0.4, 4),
                             sink_logits=torch.zeros(4), dtype=torch.float32)
    assert_close(torch.from_numpy(out), naive, ref, torch.float32, "numpy out")
    assert_close(torch.from_numpy(lse), ref_lse.float(), ref_lse, torch.float32, "numpy lse")


def test_numpy_float64_varlen_and_backward():
    lens = [3, 11]
    cu = np.array([0, 3, 14], dtype=np.int64)  # cast to int32 by the package
    q, k, v = (np.random.default_rng(int(torch.randint(0, 2**31, ()))).standard_normal((14, 2, 8)) for _ in range(3))
    out, lse = omniattn.attention(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, causal=True, return_lse=True)
    ref, _ = varlen_ref(*(torch.from_numpy(t) for t in (q, k, v)), cu, cu, causal=True)
    assert out.dtype == np.float64 and np.abs(out - ref.numpy()).max() < 1e-12
    dout = np.ones_like(out)
    dq, dk, dv = omniattn.attention_backward(dout, q, k, v, out, lse, cu_seqlens_q=cu, cu_seqlens_k=cu, causal=True)
    tq, tk, tv = (torch.from_numpy(t).requires_grad_() for t in (q, k, v))
    varlen_ref(tq, tk, tv, cu, cu, causal=True)[0].sum().backward()
    for ours, t in ((dq, tq), (dk, tk), (dv, tv)):
        assert np.abs(ours - t.grad.numpy()).max() < 1e-6  # LSE crosses in f32: ~1e-7 relative
    assert sum(lens) == 14


class _OnlyDLPack:
    """An array of an unknown framework: only the DLPack protocol."""

    def __init__(self, t):
        self._t = t

    def __dlpack__(self, **kw):
        return self._t.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._t.__dlpack_device__()


def test_any_dlpack_producer_is_zero_copy():
    q, k, v = qkv(1, 9, 9, 2, 2, 8, 8, torch.float32)
    out = omniattn.attention(_OnlyDLPack(q), _OnlyDLPack(k), _OnlyDLPack(v))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, omniattn.attention(q, k, v).numpy())
    # Zero-copy: numpy views of torch memory see later writes.
    qn = q.numpy()
    q.mul_(2)
    np.testing.assert_array_equal(omniattn.attention(qn, k.numpy(), v.numpy()), omniattn.attention(q, k, v).numpy())


def test_backends_listed():
    names = {name for name, available, _ in omniattn.backends() if available}
    assert {"cpu", "reference"} <= names
