"""The speed options: each runs on a CPU unchanged and agrees with the plain fp32 run."""

import lightning as L
import pytest
import torch

from cvae_lightning.training import train

# Per-image validation loss after the tiny run: bf16 autocast and NHWC change rounding only.
TOLERANCE = 0.05


@pytest.fixture
def fp32_loss(tiny_cfg):
    """The plainest run: fp32, contiguous (NCHW) tensors."""
    cfg = tiny_cfg.copy()
    cfg.model.channels_last = False
    cfg.trainer.precision = "32-true"
    return train(cfg)["val/loss"]


def test_gpu_options_run_on_cpu_and_agree(tiny_cfg, fp32_loss, tmp_path):
    """bf16 autocast (what precision=auto picks on an AMX/AVX512-BF16 CPU), NHWC, data on
    the device: the same loss as the plainest run, to rounding."""
    tiny_cfg.paths.output = str(tmp_path / "fast")
    tiny_cfg.trainer.precision = "bf16-mixed"
    tiny_cfg.model.channels_last = True
    tiny_cfg.data.on_device = True  # on a CPU run the "device" is the CPU: same code path
    fast = train(tiny_cfg)["val/loss"]
    assert fast == pytest.approx(fp32_loss, rel=TOLERANCE)


@pytest.mark.slow
def test_compiled_model_agrees(tiny_cfg, fp32_loss, tmp_path):
    tiny_cfg.paths.output = str(tmp_path / "compiled")
    tiny_cfg.model.compile = True
    assert train(tiny_cfg)["val/loss"] == pytest.approx(fp32_loss, rel=TOLERANCE)


class NoSyncSteps(L.Callback):
    """Makes any host-device sync inside steps 1-5 an error (CUDA's sync debug mode)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if 1 <= batch_idx <= 5:
            torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
def test_training_steps_do_not_sync_the_gpu(tiny_cfg):
    tiny_cfg.trainer.accelerator = "gpu"
    tiny_cfg.data.on_device = True
    metrics = train(tiny_cfg, extra_callbacks=[NoSyncSteps()])
    assert metrics["val/loss"] > 0
