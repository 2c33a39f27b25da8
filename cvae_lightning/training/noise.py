"""The random noise of training (the reparameterisation's eps): one stream per process, saved
and restored per process, so a resumed run draws what an uninterrupted one would have.

Each process draws from torch's global generators. Under DDP every rank starts from the run's
seed plus its rank (rank 0 keeps the seed itself, so one process is the reference exactly);
the data order has its own generator (the DataModule's), the same on every rank.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def seed_noise_for_rank(rank: int) -> None:
    """Give rank r > 0 the stream of seed + r (seed: what seed_everything set)."""
    if rank > 0:
        torch.manual_seed(torch.initial_seed() + rank)


def _own_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":  # this process's own GPU only: others may not exist on resume
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def noise_state(strategy) -> dict[str, torch.Tensor]:
    """Every rank's generator states, stacked by rank: {"cpu": (world, n), "cuda": (world,
    m)}. A collective under DDP (every rank saves a checkpoint at the same step)."""
    device, world = strategy.root_device, strategy.world_size
    own = _own_state(device)
    if world == 1:
        return {key: state[None] for key, state in own.items()}
    gathered = {}
    for key, state in own.items():
        # NCCL gathers device tensors only; gloo takes CPU ones.
        state = state.to(device) if device.type == "cuda" else state
        gathered[key] = strategy.all_gather(state).cpu()
    return gathered


def load_noise_state(saved: dict, strategy) -> None:
    """Restore this rank's generators from `noise_state`'s output (or the older layout: one
    CPU state, all GPUs' states). Saved by another number of processes: start afresh, said."""
    if not saved:
        return
    device, rank, world = strategy.root_device, strategy.global_rank, strategy.world_size
    cpu, cuda = saved.get("cpu"), saved.get("cuda")
    if cpu is not None and cpu.dim() == 1:  # the older layout: one process
        cpu = cpu[None]
        if isinstance(cuda, list | tuple):  # torch.cuda.get_rng_state_all(): one per GPU
            index = device.index or 0
            cuda = cuda[index][None] if device.type == "cuda" and index < len(cuda) else None
    if cpu is None or len(cpu) != world:
        if rank == 0:
            log.warning(
                f"The checkpoint's noise generators are from {0 if cpu is None else len(cpu)} "
                f"process(es) and this run has {world}: the noise starts afresh from the seed"
            )
        return
    # A row of its own (clone): the generators read a state from the start of its storage.
    torch.set_rng_state(cpu[rank].clone())
    if cuda is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda[rank].clone(), device)
