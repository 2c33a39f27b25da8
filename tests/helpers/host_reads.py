"""What a training step asks of the device, counted: the calls that read a tensor's value on
the host (each a stream sync on a GPU) and the tensors made from Python numbers (each a
host-to-device copy there)."""

from __future__ import annotations

import numbers

import lightning as L
import torch

from cvae_lightning.training.epoch_sums import HostCopy

READS = ("item", "cpu", "__bool__", "__int__", "__float__", "tolist", "numpy")


def _from_numbers(data) -> bool:
    if isinstance(data, numbers.Number):
        return True
    return isinstance(data, list | tuple) and any(_from_numbers(d) for d in data)


class CountHostReads(L.Callback):
    """Records every such call made during training steps first..last (1-based), callbacks'
    hooks and Lightning's loop included. Exempt: the optimizer's step counters (torch keeps
    them on the host by design) and `HostCopy.take`, which reads pinned host memory only once
    an event says the copy has landed (what it does on a GPU is a GPU-marked test)."""

    def __init__(self, first: int = 2, last: int = 5):
        self.first, self.last = first, last
        self.calls: list[str] = []
        self._saved: dict = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step + 1 == self.first:
            self._install(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.last:
            self.remove()

    def _install(self, trainer) -> None:
        exempt = {
            id(state["step"])
            for opt in trainer.optimizers
            for state in opt.state.values()
            if isinstance(state.get("step"), torch.Tensor)
        }
        calls, inside_take = self.calls, []
        take = HostCopy.take

        def exempt_take(copy, *args, **kwargs):
            inside_take.append(1)
            try:
                return take(copy, *args, **kwargs)
            finally:
                inside_take.pop()

        self._saved[(HostCopy, "take")] = take
        HostCopy.take = exempt_take

        def counting(name, real):
            def wrapper(self, *args, **kwargs):
                if id(self) not in exempt and not inside_take:
                    calls.append(f"Tensor.{name}")
                return real(self, *args, **kwargs)

            return wrapper

        def making(name, real):
            def wrapper(data, *args, **kwargs):
                if _from_numbers(data):
                    calls.append(f"torch.{name}({data!r})")
                return real(data, *args, **kwargs)

            return wrapper

        for owner, names, wrap in ((torch.Tensor, READS, counting),
                                   (torch, ("tensor", "as_tensor"), making)):  # fmt: skip
            for name in names:
                own = owner.__dict__.get(name)  # None: inherited from torch._C.TensorBase
                self._saved[(owner, name)] = own
                setattr(owner, name, wrap(name, getattr(owner, name)))

    def remove(self) -> None:
        for (owner, name), own in self._saved.items():
            if own is None:
                delattr(owner, name)
            else:
                setattr(owner, name, own)
        self._saved = {}

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self.remove()
