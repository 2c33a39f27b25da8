"""CPU threads: a job among several at once takes its share of the cores."""

import torch

from cvae_lightning.training.threads import share_cores


def test_jobs_at_once_share_the_cores_and_one_job_keeps_them():
    before = torch.get_num_threads()
    try:
        assert share_cores(1, cores=8) == f"CPU threads: {before} (8 cores)"
        assert torch.get_num_threads() == before  # alone: torch's own choice stands
        assert share_cores(3, cores=8) == "CPU threads: 2 (8 cores, shared by 3 jobs at once)"
        assert share_cores(4, cores=2) == "CPU threads: 1 (2 cores, shared by 4 jobs at once)"
    finally:
        torch.set_num_threads(before)
