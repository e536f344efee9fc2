"""omniattn: exact and block-sparse attention (FlashAttention-style) and decoding on CPUs and NVIDIA GPUs.

    import omniattn
    out = omniattn.attention(q, k, v, causal=True)          # torch, numpy, cupy, jax or any DLPack array
    mask = omniattn.sparse.sliding_window(512, 0, q_tokens=8192)
    out = omniattn.attention(q, k, v, block_mask=mask)      # block-sparse (autograd, torch.compile)
    out = omniattn.attention_decode(q, k_cache, v_cache, cache_seqlens, block_table)   # (paged) KV cache
    from omniattn.flash_attn_interface import flash_attn_func  # drop-in for flash-attn 2.x
"""
from . import _C, sparse
from ._api import attention, attention_backward
from ._decode import attention_decode, kv_cache_append
from .sparse import BlockMask

__version__ = _C.__version__
with_cuda = _C.with_cuda

try:  # the torch custom ops (autograd, torch.compile) exist when torch is installed
    from . import _torch_decode_ops, _torch_graph_ops, _torch_ops  # noqa: F401
except ImportError:
    pass


def backends():
    """[(name, available, summary)] for every backend of this build."""
    return _C.backends()


__all__ = ["attention", "attention_backward", "attention_decode", "kv_cache_append", "BlockMask", "sparse",
           "backends", "with_cuda", "__version__"]
