"""A whole training step captured once in a CUDA graph and replayed per batch (plain PyTorch).

At batch 128 one step of this model is ~1.7 ms of GPU work: launching its few hundred kernels
from Python one by one costs more than running them. Replaying one graph launches them all at
once. The step must be capturable: no host syncs, no new allocations between replays, an
optimizer whose state lives on the device (AdamW with capturable=True).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

import torch

from cvae_lightning.training.precision import on_cuda

log = logging.getLogger(__name__)


class CapturedStep:
    """`step(*inputs)` run eagerly for `warmup` calls (on a side stream, as capture requires),
    then captured once and replayed: each call copies its inputs into the static buffers the
    graph reads (a device-to-device copy) and replays it. The outputs are the graph's static
    tensors, overwritten by the next call.

    If the capture fails, the step says why in one line and runs eagerly from then on.
    """

    def __init__(self, step: Callable[..., torch.Tensor], warmup: int = 3):
        self.step, self.warmup = step, warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self.inputs: list[torch.Tensor | None] = []
        self.output: torch.Tensor | None = None

    def __call__(self, *inputs: torch.Tensor | None) -> torch.Tensor:
        if self.graph is not None:
            return self._replay(inputs)
        self.calls += 1
        if self.failed:
            return self.step(*inputs)
        if self.calls <= self.warmup:
            # Warm-up on a side stream: lazy state (optimizer moments, cuDNN's algorithm
            # choice) is made before capture, never during it.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            return out
        return self._capture(inputs)

    def _capture(self, inputs) -> torch.Tensor:
        self.inputs = [None if x is None else x.clone() for x in inputs]
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.output = self.step(*self.inputs)
        except RuntimeError as error:  # e.g. an op that syncs with the host
            self.failed = True
            reason = str(error).strip().splitlines()[0]
            log.warning(f"model.cuda_graph: the step could not be captured ({reason}); eager")
            return self.step(*inputs)
        self.graph = graph
        graph.replay()  # capture records the kernels without running them: run this batch
        return self.output

    def _replay(self, inputs) -> torch.Tensor:
        for static, x in zip(self.inputs, inputs, strict=True):
            if static is None:
                continue
            if x.shape != static.shape:
                raise ValueError(
                    f"model.cuda_graph: a batch of shape {tuple(x.shape)} after capturing "
                    f"{tuple(static.shape)}; the graph needs one batch shape (training drops "
                    "the last partial batch). Set model.cuda_graph=false for this data"
                )
            static.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.output


def choose_cuda_graph(
    asked: bool | str,
    accelerator: str,
    devices,
    strategy: str,
    precision: str,
    gradient_clip_val: float | None,
    accumulate_grad_batches: int,
    compile: bool | str,
) -> tuple[bool, str | None]:
    """(capture the training step?, why not, for the console) for model.cuda_graph=`asked`
    (true, false or auto: on where it can be) and the trainer's settings."""
    if asked is False or asked is None:
        return False, None
    if not on_cuda(str(accelerator)):
        # auto on a CPU is the normal case, not worth a line
        return False, None if asked == "auto" else "there is no CUDA device"
    blockers = [
        (devices not in (1, "1", [0]) or str(strategy) not in ("auto", "single_device"),
         f"one GPU only (trainer.devices={devices}, trainer.strategy={strategy})"),
        (str(precision).startswith("16"),
         f"trainer.precision={precision} needs a loss scaler, which reads the device"),
        (bool(gradient_clip_val), f"trainer.gradient_clip_val={gradient_clip_val} is clipped by "
         "Lightning's automatic optimisation"),
        (accumulate_grad_batches != 1, "trainer.accumulate_grad_batches must be 1"),
        (bool(compile), f"model.compile={compile} makes graphs of its own"),
    ]  # fmt: skip
    for blocked, why in blockers:
        if blocked:
            return False, why
    return True, None


def accepts(factory: Callable, name: str) -> bool:
    """Whether a (partial of a) callable takes the keyword `name`."""
    target = getattr(factory, "func", factory)
    try:
        return name in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
