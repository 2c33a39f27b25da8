"""CPU threads when runs share a machine: each of the jobs a parallel launcher runs at once
gets its share of the cores, instead of every job starting one thread per core.

Two jobs of two threads each on two cores spend their time swapping threads and waiting at
each other's barriers (measured: ~1,750 im/s alone, 65-80 each when both ran at once).
"""

from __future__ import annotations

import os

import torch


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a cluster's allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def share_cores(jobs: int, cores: int | None = None) -> str:
    """Give this process cores // jobs intra-op threads when `jobs` > 1 run at once; returns
    the console's line saying what the run uses."""
    cores = cores or available_cores()
    if jobs > 1:
        torch.set_num_threads(max(1, cores // jobs))
    shared = f", shared by {jobs} jobs at once" if jobs > 1 else ""
    return f"CPU threads: {torch.get_num_threads()} ({cores} cores{shared})"
