"""omniattn.flash_attn_interface: flash-attn 2.x signatures and semantics against the float64 reference."""
import pytest
import torch

from omniattn.flash_attn_interface import (flash_attn_func, flash_attn_kvpacked_func, flash_attn_qkvpacked_func,
                                           flash_attn_varlen_func, flash_attn_varlen_kvpacked_func,
                                           flash_attn_varlen_qkvpacked_func, flash_attn_with_kvcache)
from reference import assert_close, attention_ref, rotary_ref, varlen_ref

BF16 = torch.bfloat16


def check(out, q, k, v, what, **opts):
    ref, _ = attention_ref(q, k, v, **opts)
    naive, _ = attention_ref(q, k, v, dtype=q.dtype, **opts)
    assert_close(out, naive, ref, q.dtype, what)


def test_flash_attn_func_positional_signature():
    q, k, v = torch.randn(2, 37, 6, 64).to(BF16), torch.randn(2, 45, 2, 64).to(BF16), torch.randn(2, 45, 2, 64).to(BF16)
    slopes = torch.rand(6)
    # flash-attn 2.x order: dropout_p, softmax_scale, causal, window_size, softcap, alibi_slopes, deterministic,
    # return_attn_probs.
    out, lse, probs = flash_attn_func(q, k, v, 0.0, 0.2, True, (11, 0), 6.0, slopes, True, True)
    check(out, q, k, v, "flash_attn_func", scale=0.2, causal=True, window=(11, 0), softcap=6.0, alibi_slopes=slopes)
    assert lse.shape == (2, 6, 37) and lse.dtype == torch.float32 and probs is None
    check(flash_attn_func(q, k, v, causal=True), q, k, v, "flash_attn_func causal", causal=True)


def test_packed_variants_and_their_gradients():
    qkv = torch.randn(2, 29, 3, 4, 32, requires_grad=True)
    out = flash_attn_qkvpacked_func(qkv, causal=True)
    q, k, v = qkv.detach().unbind(2)
    check(out, q, k, v, "qkvpacked", causal=True)
    out.sum().backward()
    assert qkv.grad.shape == qkv.shape and torch.isfinite(qkv.grad).all()
    ref_qkv = qkv.detach().double().requires_grad_()
    attention_ref(*ref_qkv.unbind(2), causal=True)[0].sum().backward()
    naive_qkv = qkv.detach().clone().requires_grad_()
    attention_ref(*naive_qkv.unbind(2), causal=True, dtype=torch.float32)[0].sum().backward()
    assert_close(qkv.grad, naive_qkv.grad, ref_qkv.grad, torch.float32, "qkvpacked grad")

    q = torch.randn(2, 13, 4, 32)
    kv = torch.randn(2, 21, 2, 2, 32)
    check(flash_attn_kvpacked_func(q, kv, window_size=(3, 3)), q, *kv.unbind(2), "kvpacked", window=(3, 3))


def cu(lengths):
    return torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)


def check_varlen(out, q, k, v, cu_q, cu_k, what, **opts):
    ref, _ = varlen_ref(q, k, v, cu_q, cu_k, **opts)
    naive, _ = varlen_ref(q, k, v, cu_q, cu_k, dtype=q.dtype, **opts)
    assert_close(out, naive, ref, q.dtype, what)


def test_varlen_variants():
    cu_q, cu_k = cu([1, 17, 113]), cu([5, 17, 60])
    q, k, v = torch.randn(131, 4, 64).to(BF16), torch.randn(82, 1, 64).to(BF16), torch.randn(82, 1, 64).to(BF16)
    out, lse, _ = flash_attn_varlen_func(q, k, v, cu_q, cu_k, 113, 60, causal=True, return_attn_probs=True)
    check_varlen(out, q, k, v, cu_q, cu_k, "varlen", causal=True)
    assert lse.shape == (4, 131)

    cu_s = cu([9, 31])
    qkv = torch.randn(40, 3, 2, 16)
    check_varlen(flash_attn_varlen_qkvpacked_func(qkv, cu_s, 31, softcap=2.0), *qkv.unbind(1), cu_s, cu_s,
                 "varlen qkvpacked", softcap=2.0)
    q, kv = torch.randn(40, 4, 16), torch.randn(40, 2, 2, 16)
    check_varlen(flash_attn_varlen_kvpacked_func(q, kv, cu_s, cu_s, 31, 31, causal=True), q, *kv.unbind(1), cu_s,
                 cu_s, "varlen kvpacked", causal=True)


def test_kvcache_appends_in_place_and_attends_to_the_used_prefix():
    b, cap, hkv, hq, d = 3, 64, 2, 4, 32
    k_cache, v_cache = torch.randn(b, cap, hkv, d), torch.randn(b, cap, hkv, d)
    before_k, before_v = k_cache.clone(), v_cache.clone()
    seqlens = torch.tensor([0, 17, 50], dtype=torch.int32)
    q, k_new, v_new = torch.randn(b, 3, hq, d), torch.randn(b, 3, hkv, d), torch.randn(b, 3, hkv, d)
    out, lse = flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=seqlens, causal=True,
                                       return_softmax_lse=True)
    assert lse.shape == (b, hq, 3)
    for i, n in enumerate(seqlens.tolist()):
        torch.testing.assert_close(k_cache[i, n:n + 3], k_new[i], rtol=0, atol=0)
        torch.testing.assert_close(v_cache[i, n:n + 3], v_new[i], rtol=0, atol=0)
        untouched = torch.ones(cap, dtype=torch.bool)
        untouched[n:n + 3] = False
        assert torch.equal(k_cache[i, untouched], before_k[i, untouched])
        keys, values = k_cache[i:i + 1, :n + 3], v_cache[i:i + 1, :n + 3]
        check(out[i:i + 1], q[i:i + 1], keys, values, f"kvcache sequence {i}", causal=True)


def test_kvcache_without_new_tokens_and_batch_index():
    k_cache, v_cache = torch.randn(4, 40, 1, 16), torch.randn(4, 40, 1, 16)
    q = torch.randn(2, 1, 2, 16)
    idx = torch.tensor([3, 1], dtype=torch.int32)
    out = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=25, cache_batch_idx=idx, softcap=3.0)
    for i, row in enumerate(idx.tolist()):
        check(out[i:i + 1], q[i:i + 1], k_cache[row:row + 1, :25], v_cache[row:row + 1, :25], f"row {row}",
              softcap=3.0)
    full = flash_attn_with_kvcache(q, k_cache[:2], v_cache[:2])  # no cache_seqlens: every cached key
    check(full, q, k_cache[:2], v_cache[:2], "whole cache")


def test_unsupported_arguments_raise():
    q = torch.randn(1, 4, 2, 8)
    with pytest.raises(NotImplementedError, match="dropout_p"):
        flash_attn_func(q, q, q, dropout_p=0.1)
    with pytest.raises(ValueError, match="rotary_cos: expected k and v with it"):
        flash_attn_with_kvcache(q, q, q, rotary_cos=torch.ones(4, 4), rotary_sin=torch.zeros(4, 4))
    with pytest.raises(NotImplementedError, match="cache_batch_idx: not supported with block_table"):
        flash_attn_with_kvcache(q, q, q, block_table=torch.zeros(1, 1, dtype=torch.int32),
                                cache_batch_idx=torch.zeros(1, dtype=torch.int32))
    with pytest.raises(NotImplementedError, match="cache_leftpad"):
        flash_attn_with_kvcache(q, q, q, cache_leftpad=torch.zeros(1, dtype=torch.int32))
    with pytest.raises(ValueError, match="cache"):
        flash_attn_with_kvcache(q, q.clone(), q.clone(), q[:, :2], q[:, :2], cache_seqlens=3)


def _paged(b, pages_per_seq, page_size, hkv, d, dtype=torch.float32):
    pool = b * pages_per_seq + 2
    k_cache, v_cache = torch.randn(pool, page_size, hkv, d).to(dtype), torch.randn(pool, page_size, hkv, d).to(dtype)
    table = torch.randperm(pool)[: b * pages_per_seq].to(torch.int32).reshape(b, pages_per_seq)
    return k_cache, v_cache, table


def _sequence(cache, table_row, n):
    """The first n cached tokens [1, n, H, D] of one sequence of a paged cache."""
    page = cache.shape[1]
    rows = [cache[int(table_row[j // page]), j % page] for j in range(n)]
    return torch.stack(rows)[None] if rows else cache[:0, 0][None]


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("interleaved", [True, False])
def test_kvcache_paged_with_rotary(causal, interleaved):
    # flash-attn 2.x: k rotated at cache_seqlens + t; q at the same positions when causal or local, else every
    # query at cache_seqlens; cache_seqlens itself is not modified.
    b, hkv, hq, d, new = 3, 2, 4, 32, 2
    k_cache, v_cache, table = _paged(b, 4, 16, hkv, d, BF16)
    seqlens = torch.tensor([0, 9, 50], dtype=torch.int32)
    q, k_new, v_new = (torch.randn(b, new, h, d).to(BF16) for h in (hq, hkv, hkv))
    cos, sin = torch.randn(64, 8).to(BF16), torch.randn(64, 8).to(BF16)
    out = flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, rotary_cos=cos, rotary_sin=sin,
                                  cache_seqlens=seqlens, block_table=table, causal=causal,
                                  rotary_interleaved=interleaved)
    assert seqlens.tolist() == [0, 9, 50]
    positions = seqlens.long()[:, None] + torch.arange(new)
    q_positions = positions if causal else seqlens.long()[:, None].expand(b, new)
    q_rot = rotary_ref(q, cos.float(), sin.float(), q_positions, interleaved).to(BF16)
    k_rot = rotary_ref(k_new, cos.float(), sin.float(), positions, interleaved)
    for i, n in enumerate(seqlens.tolist()):
        keys = _sequence(k_cache, table[i], n + new)
        assert_close(keys[0, n:], k_new[i], k_rot[i], BF16, f"rotated k of sequence {i}")
        assert torch.equal(_sequence(v_cache, table[i], n + new)[0, n:], v_new[i])
        check(out[i:i + 1], q_rot[i:i + 1], keys, _sequence(v_cache, table[i], n + new), f"paged {i}",
              causal=causal)


def test_kvcache_batch_index_append_long_queries_and_splits():
    k_cache, v_cache = torch.randn(5, 64, 1, 16), torch.randn(5, 64, 1, 16)
    idx = torch.tensor([4, 0], dtype=torch.int32)
    q, k_new, v_new = torch.randn(2, 20, 2, 16), torch.randn(2, 20, 1, 16), torch.randn(2, 20, 1, 16)
    # 20 queries > the decode kernel's 16: the forward kernel runs on the gathered rows.
    out = flash_attn_with_kvcache(q, k_cache, v_cache, k_new, v_new, cache_seqlens=7, cache_batch_idx=idx,
                                  causal=True)
    for i, row in enumerate(idx.tolist()):
        assert torch.equal(k_cache[row, 7:27], k_new[i])
        check(out[i:i + 1], q[i:i + 1], k_cache[row:row + 1, :27], v_cache[row:row + 1, :27], f"row {row}",
              causal=True)
    q1 = torch.randn(2, 1, 2, 16)
    for splits in (1, 3):
        out = flash_attn_with_kvcache(q1, k_cache, v_cache, cache_seqlens=torch.tensor([64, 30], dtype=torch.int32),
                                      cache_batch_idx=idx, num_splits=splits)
        check(out[1:], q1[1:], k_cache[:1, :30], v_cache[:1, :30], f"num_splits={splits}")


def test_kvcache_paged_long_queries():
    k_cache, v_cache, table = _paged(2, 3, 32, 2, 16)
    seqlens = torch.tensor([70, 30], dtype=torch.int32)
    q = torch.randn(2, 25, 4, 16)
    out, lse = flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=seqlens, block_table=table, causal=True,
                                       return_softmax_lse=True)
    assert lse.shape == (2, 4, 25)
    for i, n in enumerate(seqlens.tolist()):
        check(out[i:i + 1], q[i:i + 1], _sequence(k_cache, table[i], n), _sequence(v_cache, table[i], n),
              f"long q, paged {i}", causal=True)


def test_varlen_with_paged_kv():
    k_pages, v_pages, table = _paged(3, 3, 16, 2, 32)
    lens_k = [5, 0, 40]
    cu_q, cu_k = cu([3, 1, 17]), cu(lens_k)
    q = torch.randn(21, 4, 32, requires_grad=True)
    k_pages.requires_grad_()
    out = flash_attn_varlen_func(q, k_pages, v_pages, cu_q, cu_k, 17, 40, causal=True, block_table=table)
    keys = torch.cat([_sequence(k_pages.detach(), table[b], n)[0] for b, n in enumerate(lens_k)])
    values = torch.cat([_sequence(v_pages, table[b], n)[0] for b, n in enumerate(lens_k)])
    check_varlen(out, q.detach(), keys, values, cu_q, cu_k, "varlen paged", causal=True)
    out.sum().backward()  # the gather is differentiable: gradients reach the used pages only
    used = torch.zeros(k_pages.shape[0], dtype=torch.bool)
    for b, n in enumerate(lens_k):
        used[table[b, : -(-n // 16)].long()] = True
    assert k_pages.grad[~used].abs().sum() == 0 and k_pages.grad[used].abs().sum() > 0
