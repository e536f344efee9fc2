"""Bad input surfaces the C++ omniattn::Error message as ValueError; unsupported combinations as
NotImplementedError; unsupported dtypes as TypeError. Nothing is silently accepted."""
import numpy as np
import pytest
import torch

import omniattn


def qkv(*, d=16):
    return torch.randn(1, 8, 2, d), torch.randn(1, 8, 2, d), torch.randn(1, 8, 2, d)


def test_value_errors_carry_the_cpp_message():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"k: expected head dim 16 \(q's\), given \[1, 8, 2, 8\]"):
        omniattn.attention(q, k[..., :8], v)
    with pytest.raises(ValueError, match="a number of heads that is a multiple of k's 2"):
        omniattn.attention(torch.randn(1, 8, 3, 16), k, v)
    with pytest.raises(ValueError, match=r"options.window_left: expected >= -1"):
        omniattn.attention(q, k, v, window=(-5, 0))
    with pytest.raises(ValueError, match="options.softcap"):
        omniattn.attention(q, k, v, softcap=-1.0)
    with pytest.raises(ValueError, match="options.cu_seqlens_q: expected last entry 8"):
        cu = torch.tensor([0, 7], dtype=torch.int32)
        omniattn.attention(q[0], k[0], v[0], cu_seqlens_q=cu, cu_seqlens_k=cu)
    with pytest.raises(ValueError, match="options.alibi_slopes: expected shape"):
        omniattn.attention(q, k, v, alibi_slopes=torch.ones(3))
    with pytest.raises(ValueError, match=r"window: expected \(left, right\)"):
        omniattn.attention(q, k, v, window=(1,))
    with pytest.raises(ValueError, match="backend: expected 'auto'"):
        omniattn.attention(q, k, v, backend="tpu")


def test_unsupported_combinations_raise_not_implemented():
    q, k, v = qkv()
    with pytest.raises(NotImplementedError, match="cpu: f64 runs on the reference backend"):
        omniattn.attention(q.double(), k.double(), v.double(), backend="cpu")
    if not omniattn.with_cuda:
        with pytest.raises(NotImplementedError, match="options.backend"):
            omniattn.attention(q, k, v, backend="cuda_sm80")


def test_type_errors():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="q: expected dtype float64, float32, float16, bfloat16 or int32"):
        omniattn.attention(q.to(torch.complex64), k.to(torch.complex64), v.to(torch.complex64))
    with pytest.raises(TypeError, match="q: expected a torch tensor, a numpy array or an object with __dlpack__"):
        omniattn.attention([[1.0]], k.numpy(), v.numpy())
    with pytest.raises(TypeError, match="block_mask: expected an omniattn.BlockMask"):
        omniattn.attention(q, k, v, block_mask=object())


def test_numpy_errors_and_read_only_inputs():
    q, k, v = (t.numpy() for t in qkv())
    with pytest.raises(ValueError, match="v: expected 8 keys"):
        omniattn.attention(q, k, v[:, :5])
    for a in (q, k, v):
        a.flags.writeable = False  # inputs are never written: read-only arrays are accepted
    assert np.isfinite(omniattn.attention(q, k, v)).all()


def test_dimension_limit():
    q = torch.randn(1, 1, 1, 1, 8)
    with pytest.raises(ValueError, match="at most 4 dimensions"):
        omniattn.attention(q, q, q)
