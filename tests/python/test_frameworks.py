"""DLPack from other frameworks: numpy in -> numpy out (test_attention.py covers more), jax arrays in -> jax
arrays out (through torch views, so bfloat16 works). Skipped when jax is absent; cupy and jax on a GPU are in
test_cuda.py."""
import numpy as np
import pytest
import torch

import omniattn
from omniattn import sparse


def test_numpy_round_trip_with_a_mask():
    q, k, v = (np.random.default_rng(i).standard_normal((1, 70, 2, 16)).astype(np.float32) for i in range(3))
    mask = sparse.sliding_window(9, 0, q_tokens=70, block_size=64)
    out = omniattn.attention(q, k, v, block_mask=mask)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, omniattn.attention(*map(torch.from_numpy, (q, k, v)), block_mask=mask))


def test_jax_arrays():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    q, k, v = (torch.randn(2, 33, 4, 16), torch.randn(2, 40, 2, 16), torch.randn(2, 40, 2, 16))
    want, want_lse = omniattn.attention(q, k, v, causal=True, return_lse=True)
    cpu = jax.devices("cpu")[0]  # jax defaults to its GPU where there is one; this test is about host arrays
    jq, jk, jv = (jax.device_put(jnp.asarray(t.numpy()), cpu) for t in (q, k, v))
    out, lse = omniattn.attention(jq, jk, jv, causal=True, return_lse=True)
    assert isinstance(out, jax.Array) and out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), want.numpy())
    np.testing.assert_array_equal(np.asarray(lse), want_lse.numpy())
    # bfloat16 crosses through torch (numpy has no bfloat16).
    out16 = omniattn.attention(jq.astype(jnp.bfloat16), jk.astype(jnp.bfloat16), jv.astype(jnp.bfloat16))
    assert out16.dtype == jnp.bfloat16
    want16 = omniattn.attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    np.testing.assert_array_equal(np.asarray(out16.astype(jnp.float32)), want16.float().numpy())
    mask = sparse.sliding_window(5, 0, q_tokens=33, k_tokens=40, block_size=64)
    np.testing.assert_array_equal(np.asarray(omniattn.attention(jq, jk, jv, block_mask=mask)),
                                  omniattn.attention(q, k, v, block_mask=mask).numpy())

