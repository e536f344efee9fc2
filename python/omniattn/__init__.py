"""omniattn: exact attention (FlashAttention-style) on CPUs and NVIDIA GPUs.

    import omniattn
    out = omniattn.attention(q, k, v, causal=True)          # torch, numpy or any DLPack array
    from omniattn.flash_attn_interface import flash_attn_func  # drop-in for flash-attn 2.x
"""
from . import _C
from ._api import attention, attention_backward

__version__ = _C.__version__
with_cuda = _C.with_cuda

try:  # the torch custom ops (autograd, torch.compile) exist when torch is installed
    from . import _torch_ops  # noqa: F401
except ImportError:
    pass


def backends():
    """[(name, available, summary)] for every backend of this build."""
    return _C.backends()


__all__ = ["attention", "attention_backward", "backends", "with_cuda", "__version__"]
