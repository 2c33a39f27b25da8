"""Per-epoch sums on the device, and host copies that do not wait for it."""

import pytest
import torch

from cvae_lightning.training.epoch_sums import EpochSums, HostCopy, means


def terms(loss: float) -> dict[str, torch.Tensor]:
    return {"loss": torch.tensor(loss), "recon": torch.tensor(loss - 1), "kl": torch.tensor(1.0)}


def test_means_are_per_image_and_a_reset_keeps_the_buffer():
    sums = EpochSums()
    sums.reset("cpu")
    buffer = sums.buffer
    sums.add(terms(10.0), 4, 1)
    sums.add(terms(30.0), 4, 2)
    assert {k: v.item() for k, v in means(sums.totals()).items()} == {
        "loss": 5.0, "recon": 4.75, "kl": 0.25,
    }  # fmt: skip
    sums.reset("cpu")
    assert sums.buffer is buffer and sums.images == 0  # a captured graph keeps writing here
    assert sums.first_bad.item() == -1


def test_a_mid_epoch_checkpoint_keeps_the_sums():
    sums = EpochSums()
    sums.add(terms(8.0), 2, 1)
    again = EpochSums()
    again.load_state_dict(sums.state_dict())
    again.add(terms(8.0), 2, 2)
    assert means(again.totals())["loss"].item() == 4.0 and again.images == 4


def test_a_host_copy_is_a_snapshot():
    value, copy = torch.tensor([1.0, 2.0]), HostCopy()
    copy.start(value)
    value.add_(1)  # the device value moves on
    assert copy.ready() and copy.take() == [1.0, 2.0]
    assert copy.take() is None  # taken once


@pytest.mark.gpu
def test_a_host_copy_from_the_gpu_lands_without_a_sync():
    value, copy = torch.arange(3.0, device="cuda"), HostCopy()
    try:
        torch.cuda.set_sync_debug_mode("error")
        copy.start(value * 2)
        landed = copy.take()  # None until the event says the copy is done
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert landed in (None, [0.0, 2.0, 4.0])
    assert copy.take(wait=True) in (None, [0.0, 2.0, 4.0]) and not copy.pending
