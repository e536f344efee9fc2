"""omniattn.attention_decode and omniattn.kv_cache_append on the CPU: paged and contiguous caches against the
float64 reference on gathered K/V, rotary embedding against a written-out rotation, in-place semantics, numpy,
torch.compile, and errors."""
import numpy as np
import pytest
import torch

import omniattn
from reference import assert_close, decode_ref, rotary_ref


def paged_cache(lens, page_size, hkv, d, dtype=torch.float32, spare_pages=3):
    """Pages in a shuffled pool, unused table entries -1, unused slots NaN (never read)."""
    pages_per_seq = [-(-n // page_size) for n in lens]
    total = sum(pages_per_seq) + spare_pages
    k = torch.full((total, page_size, hkv, d), float("nan"), dtype=dtype)
    v = torch.full((total, page_size, hkv, d), float("nan"), dtype=dtype)
    perm = torch.randperm(total).tolist()
    width = max(pages_per_seq + [1]) + 1
    table = torch.full((len(lens), width), -1, dtype=torch.int32)
    for b, n in enumerate(lens):
        for p in range(pages_per_seq[b]):
            page = perm.pop()
            table[b, p] = page
            rows = min(page_size, n - p * page_size)
            k[page, :rows] = torch.randn(rows, hkv, d).to(dtype)
            v[page, :rows] = torch.randn(rows, hkv, d).to(dtype)
    return k, v, table


def check_decode(q, k, v, lens, table, **opts):
    out, lse = omniattn.attention_decode(q, k, v, lens, table, return_lse=True, **opts)
    ref, ref_lse = decode_ref(q, k, v, lens, table, **opts)
    naive, naive_lse = decode_ref(q, k, v, lens, table, dtype=q.dtype, **opts)
    assert out.shape == ref.shape and lse.shape == ref_lse.shape
    assert_close(out, naive, ref, q.dtype, "decode out")
    assert_close(lse, naive_lse.float(), ref_lse, torch.float32, "decode lse")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("page_size", [1, 16, 100])
def test_paged_decode(dtype, page_size):
    lens = torch.tensor([1, 300, 0, 77], dtype=torch.int32)
    k, v, table = paged_cache(lens.tolist(), page_size, 2, 32, dtype)
    q = torch.randn(4, 3, 8, 32).to(dtype)
    check_decode(q, k, v, lens, table, causal=True)


@pytest.mark.parametrize("opts", [
    dict(), dict(causal=True, window=(40, 0), sinks=3), dict(softcap=4.0, scale=0.2),
    dict(causal=True, alibi_slopes="alibi"), dict(causal=True, sink_logits="sinks"),
    dict(causal=True, schedule="split_kv", num_splits=3), dict(causal=True, backend="reference"),
], ids=str)
def test_contiguous_decode_options(opts):
    opts = dict(opts)
    if opts.get("alibi_slopes") == "alibi":
        opts["alibi_slopes"] = torch.rand(6)
    if opts.get("sink_logits") == "sinks":
        opts["sink_logits"] = torch.randn(6)
    k, v = torch.randn(3, 200, 3, 16), torch.randn(3, 200, 3, 16)
    q = torch.randn(3, 2, 6, 16)
    lens = torch.tensor([2, 150, 200], dtype=torch.int32)
    ref_opts = {key: val for key, val in opts.items() if key not in ("schedule", "num_splits", "backend")}
    out = omniattn.attention_decode(q, k, v, lens, **opts)
    ref, _ = decode_ref(q, k, v, lens, **ref_opts)
    naive, _ = decode_ref(q, k, v, lens, dtype=torch.float32, **ref_opts)
    assert_close(out, naive, ref, torch.float32, "contiguous decode")


def test_append_then_decode_with_rotary_both_conventions():
    for interleaved in (False, True):
        lens = torch.tensor([5, 40, 0], dtype=torch.int32)
        k, v, table = paged_cache([n + 4 for n in lens.tolist()], 16, 2, 32)
        before_k = k.clone()
        k_new, v_new = torch.randn(3, 2, 2, 32), torch.randn(3, 2, 2, 32)
        q = torch.randn(3, 2, 4, 32)
        cos, sin = torch.randn(64, 12), torch.randn(64, 12)  # rotary_dim 24 < D: the last 8 dims pass through
        q_in = q.clone()
        omniattn.kv_cache_append(k, v, k_new, v_new, lens, table, rotary_cos=cos, rotary_sin=sin,
                                 rotary_interleaved=interleaved, q=q)
        assert lens.tolist() == [7, 42, 2]  # advanced in place
        positions = (lens - 2).long()[:, None] + torch.arange(2)
        q_ref = rotary_ref(q_in, cos, sin, positions, interleaved)
        assert_close(q, q_in, q_ref, torch.float32, f"q rotated in place (interleaved={interleaved})")
        k_ref = rotary_ref(k_new, cos, sin, positions, interleaved)
        for b in range(3):
            for t in range(2):
                p = int(positions[b, t])
                page, slot = int(table[b, p // 16]), p % 16
                assert_close(k[page, slot], k_new[b, t], k_ref[b, t], torch.float32, "rotated k in the cache")
                assert torch.equal(v[page, slot], v_new[b, t])
                before_k[page, slot] = k[page, slot]
        assert torch.equal(k.nan_to_num(7.0), before_k.nan_to_num(7.0))  # nothing else written
        check_decode(q, k, v, lens, table, causal=True)


def test_append_without_advancing_and_numpy():
    k, v = np.zeros((2, 10, 1, 8), np.float32), np.zeros((2, 10, 1, 8), np.float32)
    lens = np.array([3, 0], np.int32)
    k_new, v_new = np.ones((2, 2, 1, 8), np.float32), np.full((2, 2, 1, 8), 2, np.float32)
    omniattn.kv_cache_append(k, v, k_new, v_new, lens, advance=False)
    assert lens.tolist() == [3, 0] and k[0, 3:5].sum() == 16 and v[1, :2].sum() == 32 and k[0, :3].sum() == 0
    q = np.random.default_rng(1).standard_normal((2, 1, 2, 8)).astype(np.float32)
    out = omniattn.attention_decode(q, k, v, lens + 2, causal=True)
    assert isinstance(out, np.ndarray)
    ref, _ = decode_ref(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), torch.from_numpy(lens + 2),
                        causal=True)
    assert np.abs(out - ref.numpy()).max() < 1e-5


def test_compile_fullgraph_decode_step():
    def step(q, k, v, k_cache, v_cache, lens, table):
        omniattn.kv_cache_append(k_cache, v_cache, k, v, lens, table)
        return omniattn.attention_decode(q, k_cache, v_cache, lens, table, causal=True) * 2

    k_cache, v_cache, table = paged_cache([20, 33], 16, 1, 16, spare_pages=2)
    lens = torch.tensor([19, 32], dtype=torch.int32)
    args = [torch.randn(2, 1, 2, 16), torch.randn(2, 1, 1, 16), torch.randn(2, 1, 1, 16)]
    eager_cache = [t.clone() for t in (k_cache, v_cache, lens)]
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    out = compiled(*args, k_cache, v_cache, lens, table)
    want = step(*args, *eager_cache, table)
    assert torch.equal(out, want) and torch.equal(lens, eager_cache[2])
    assert torch.equal(k_cache.nan_to_num(0), eager_cache[0].nan_to_num(0))


def test_decode_errors():
    k, v, table = paged_cache([20], 16, 1, 8)
    q = torch.randn(1, 1, 1, 8)
    with pytest.raises(ValueError, match=r"cache.block_table: expected page ids in \[0, 5\)"):
        bad = table.clone()
        bad[0, 1] = 99
        omniattn.attention_decode(q, k, v, torch.tensor([20], dtype=torch.int32), bad)
    with pytest.raises(ValueError, match="q: expected 1 to 16 query tokens"):
        omniattn.attention_decode(torch.randn(1, 17, 1, 8), k, v, torch.tensor([20], dtype=torch.int32), table)
    with pytest.raises(ValueError, match="cache.seq_lens: expected entry 0 in"):
        omniattn.attention_decode(q, k, v, torch.tensor([500], dtype=torch.int32), table)
    with pytest.raises(ValueError, match="schedule: expected 'auto'"):
        omniattn.attention_decode(q, k, v, 20, table, schedule="fast")
    lens = torch.tensor([20], dtype=torch.int32)
    with pytest.raises(ValueError, match="capacity"):
        omniattn.kv_cache_append(k, v, torch.randn(1, 30, 1, 8), torch.randn(1, 30, 1, 8), lens, table)
    assert lens.item() == 20  # nothing written on error
    with pytest.raises(TypeError, match="cache_seqlens: expected an int32 tensor"):
        omniattn.kv_cache_append(k, v, torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8), lens.long(), table)
    with pytest.raises(ValueError, match="rotary_cos, rotary_sin: expected both"):
        omniattn.kv_cache_append(k, v, torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8), lens, table,
                                 rotary_cos=torch.ones(64, 4))
    with pytest.raises(ValueError, match="options.rotary.cos: expected at least 22 positions"):
        omniattn.kv_cache_append(k, v, torch.randn(1, 2, 1, 8), torch.randn(1, 2, 1, 8), lens, table,
                                 rotary_cos=torch.ones(8, 4), rotary_sin=torch.zeros(8, 4))
