"""Which framework an array comes from, and the zero-copy views between them (DLPack).

torch tensors stay torch tensors (custom ops: autograd, torch.compile). cupy and jax arrays, and device arrays of
any framework, are viewed as torch tensors (on a GPU the DLPack stream handshake orders the work); numpy arrays
and other host objects with ``__dlpack__`` are viewed as numpy arrays and go straight to the C++ library. Results go back to the caller's framework: numpy for numpy, cupy for cupy, jax for jax, torch
for torch; numpy (host) or torch (device) for an unknown DLPack producer.
"""
from __future__ import annotations

from typing import Any

try:
    import torch
except ImportError:  # numpy-only installs
    torch = None

_DL_CPU, _DL_CUDA_HOST = 1, 3


def is_torch(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def framework_of(x: Any) -> str:
    """'torch', 'numpy', 'cupy', 'jax' or 'dlpack' (any other producer)."""
    if is_torch(x):
        return "torch"
    root = type(x).__module__.split(".")[0]
    if root == "numpy":
        return "numpy"
    if root == "cupy":
        return "cupy"
    if root in ("jax", "jaxlib"):
        return "jax"
    return "dlpack"


def uses_torch(x: Any) -> bool:
    """Whether a call on x runs through torch: torch tensors, cupy and jax arrays (torch reads bfloat16, numpy
    does not), and device arrays of any other framework."""
    if is_torch(x):
        return True
    if torch is not None and framework_of(x) in ("cupy", "jax"):
        return True
    if hasattr(x, "__dlpack_device__") and x.__dlpack_device__()[0] not in (_DL_CPU, _DL_CUDA_HOST):
        if torch is None:
            raise TypeError("q: device arrays need torch installed (they are viewed as torch tensors)")
        return True
    return False


def to_framework(x: Any, use_torch: bool, name: str) -> Any:
    """Views a DLPack array as a torch tensor or numpy array (zero-copy when it is one already)."""
    if x is None:
        return None
    if use_torch:
        if is_torch(x):
            return x
        if not hasattr(x, "__dlpack__"):
            raise TypeError(f"{name}: expected a torch tensor or an object with __dlpack__, given {type(x).__name__}")
        return torch.from_dlpack(x)
    import numpy as np

    if isinstance(x, np.ndarray):
        return x
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"{name}: expected a torch tensor, a numpy array or an object with __dlpack__, "
                        f"given {type(x).__name__}")
    return np.from_dlpack(x)


def back_to(framework: str, x: Any) -> Any:
    """x (a torch tensor or numpy array the call produced) in the caller's framework, zero-copy."""
    if x is None or framework in ("torch", "numpy", "dlpack"):
        return x
    if framework == "cupy":
        import cupy

        return cupy.from_dlpack(x)
    import jax.numpy as jnp

    return jnp.from_dlpack(x)


def numpy_inner_contiguous(a):
    """The library needs a contiguous head dim only; numpy arrays with another stride there are copied."""
    import numpy as np

    return a if a.ndim == 0 or a.strides[-1] == a.itemsize else np.ascontiguousarray(a)
