"""A stand-in GPU for a CPU-only machine: the model on PyTorch's `meta` device (shapes, no
data), and a mode that fails any op whose tensors sit on two devices, as CUDA would. Copies
back to the CPU (a picture being saved) give zeros of the right shape."""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

PASS_THROUGH = ("to", "cpu", "numpy", "tolist", "__get__", "__set__", "device")


def _to_cpu(name: str, args, kwargs) -> bool:
    if name == "cpu":
        return True
    targets = [*args[1:], *kwargs.values()]
    return name == "to" and any(str(t) == "cpu" or t == torch.device("cpu") for t in targets)


class OneDevice(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        if name.startswith("_") and not name.startswith("__"):  # torch's own helpers
            return func(*args, **kwargs)
        if name in PASS_THROUGH:
            if tensors and tensors[0].is_meta and _to_cpu(name, args, kwargs):
                return torch.zeros(tensors[0].shape, dtype=tensors[0].dtype)
            return func(*args, **kwargs)
        # 0-dim CPU tensors mix with device tensors in CUDA too (they are passed as numbers).
        devices = {t.device for t in tensors if t.dim() > 0 or t.is_meta}
        if len(devices) > 1:
            raise RuntimeError(f"{name} got tensors on {sorted(map(str, devices))}")
        return func(*args, **kwargs)
