"""Values kept on the device during an epoch and read on the host without stalling it.

Plain PyTorch. `EpochSums` is what a training or validation step adds its loss terms to (a few
in-place ops, which a CUDA graph can capture); `HostCopy` brings a small device tensor to the
host behind the work already queued, so reading it never makes the GPU wait for Python.
"""

from __future__ import annotations

import torch

TERMS = ("loss", "recon", "kl")
NONE = -1.0  # first_bad before any non-finite step


class EpochSums:
    """Sums over an epoch's batches of the summed loss terms, and the first step whose loss was
    not finite, in one device buffer: [loss, recon, kl, first_bad].

    `add` reads nothing back (no host sync); the count of images is a host integer, known
    without asking the device. Nothing is reallocated after the first `reset`, so the buffer
    can be written from inside a captured graph.
    """

    def __init__(self):
        self.buffer: torch.Tensor | None = None
        self.images = 0

    def reset(self, device: torch.device | str) -> None:
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" are one
            device = torch.device("cuda", torch.cuda.current_device())
        # Zeroed in place where it is: a captured graph keeps writing to this buffer.
        if self.buffer is None or self.buffer.device != device:
            self.buffer = torch.zeros(len(TERMS) + 1, dtype=torch.float64, device=device)
        else:
            self.buffer.zero_()
        self.buffer[-1] = NONE
        self.images = 0

    def add(self, terms: dict[str, torch.Tensor], images: int, step: torch.Tensor | int) -> None:
        """Add one batch: its summed terms, its image count (a host integer), and the step it
        belongs to (under a CUDA graph a device tensor, read at replay time; replays run no
        Python, so the graph's caller counts the images)."""
        if self.buffer is None:
            self.reset(terms["loss"].device)
        values = torch.stack([terms[t].detach() for t in TERMS]).to(self.buffer.dtype)
        self.buffer[: len(TERMS)] += values
        first_bad = self.buffer[-1]
        bad = ~torch.isfinite(values[0]) & (first_bad < 0)
        first_bad.copy_(torch.where(bad, step, first_bad))
        self.images += images

    def state_dict(self) -> dict:
        """What a mid-epoch checkpoint keeps, so a resumed epoch reports the whole epoch."""
        return {"buffer": None if self.buffer is None else self.buffer.cpu(), "images": self.images}

    def load_state_dict(self, state: dict) -> None:
        self.buffer, self.images = state["buffer"], state["images"]

    def to(self, device: torch.device | str) -> None:
        if self.buffer is not None:
            self.buffer = self.buffer.to(device)

    @property
    def first_bad(self) -> torch.Tensor:
        """The first step this epoch whose loss was NaN or infinite (-1: none), on the device."""
        if self.buffer is None:
            return torch.full((), NONE, dtype=torch.float64)
        return self.buffer[-1]

    def totals(self) -> torch.Tensor:
        """[loss, recon, kl, images] on the device: the sums and the count, to reduce across
        processes before `means` divides."""
        if self.buffer is None:
            self.reset("cpu")
        # A fill with a host number, not a copy from host memory.
        count = self.buffer.new_full((1,), float(self.images))
        return torch.cat([self.buffer[: len(TERMS)], count])


def means(totals: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image means of `EpochSums.totals` (device tensors, float32 for the loggers)."""
    per_image = (totals[: len(TERMS)] / totals[len(TERMS)].clamp_min(1)).float()
    return dict(zip(TERMS, per_image.unbind(), strict=True))


class HostCopy:
    """A copy of a small device tensor on the host that does not wait for the device.

    `start(value)` queues a copy into pinned memory behind the work already queued and records
    an event; `ready()` says whether it has landed; `take(wait)` returns it as a list (None if
    not ready and not waiting). On a CPU the copy is made at once.
    """

    def __init__(self):
        self.host: torch.Tensor | None = None
        self.event: torch.cuda.Event | None = None
        self.pending = False

    def start(self, value: torch.Tensor) -> None:
        value = value.detach()
        if value.device.type == "cuda":
            if (
                self.host is None
                or self.host.shape != value.shape
                or self.host.dtype != value.dtype
            ):
                self.host = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
            self.host.copy_(value, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:  # already on the host; a copy, as the device value may change in place
            self.host, self.event = value.clone(), None
        self.pending = True

    def ready(self) -> bool:
        return self.pending and (self.event is None or self.event.query())

    def take(self, wait: bool = False) -> list | float | None:
        if not self.pending or not (wait or self.ready()):
            return None
        if self.event is not None:
            self.event.synchronize()  # done already unless `wait` asked for it
        self.pending = False
        return self.host.tolist()
