"""The training noise: one stream per process, saved and restored per process."""

from types import SimpleNamespace

import torch

from cvae_lightning.training.noise import load_noise_state, noise_state, seed_noise_for_rank


def strategy(rank=0, world=1):
    return SimpleNamespace(root_device=torch.device("cpu"), global_rank=rank, world_size=world)


def test_rank_zero_keeps_the_seed_and_other_ranks_draw_other_noise():
    draws = []
    for rank in (0, 1, 0):
        torch.manual_seed(0)
        seed_noise_for_rank(rank)
        draws.append(torch.randn(4))
    assert torch.equal(draws[0], draws[2])  # one process: the reference stream, unchanged
    assert not torch.equal(draws[0], draws[1])


def test_a_process_resumes_its_own_stream():
    torch.manual_seed(3)
    saved = noise_state(strategy())
    expected = torch.randn(5)
    torch.manual_seed(99)
    load_noise_state(saved, strategy())
    assert torch.equal(torch.randn(5), expected)


def test_each_rank_restores_its_own_row_and_the_older_layout_loads():
    torch.manual_seed(1)
    own = torch.get_rng_state()
    torch.manual_seed(2)
    other = torch.get_rng_state()
    load_noise_state({"cpu": torch.stack([other, own])}, strategy(rank=1, world=2))
    assert torch.equal(torch.get_rng_state(), own)
    # Checkpoints before per-process states: one CPU state and every GPU's list.
    load_noise_state({"cpu": other, "cuda": []}, strategy())
    assert torch.equal(torch.get_rng_state(), other)


def test_another_process_count_starts_afresh_and_says_so(caplog):
    torch.manual_seed(5)
    before = torch.get_rng_state()
    load_noise_state({"cpu": torch.stack([before] * 2)}, strategy(world=1))
    assert "from 2 process(es) and this run has 1" in caplog.text
