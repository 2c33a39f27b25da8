"""The speed options: each runs on a CPU unchanged and agrees with the plain fp32 run."""

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from cvae_lightning.training.train import train

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
    """Makes any host-device sync an error (CUDA's sync debug mode) from the start of training
    step `first` to the end of step `last` (1-based, after the CUDA graph's warm-up and
    capture, which sync by design), and over validation batches 2 onwards."""

    def __init__(self, first: int = 5, last: int = 7):
        self.first, self.last = first, last

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step + 1 == self.first:
            torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.last:
            torch.cuda.set_sync_debug_mode("default")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *_):
        if batch_idx >= 1:
            torch.cuda.set_sync_debug_mode("error")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_):
        torch.cuda.set_sync_debug_mode("default")


def gpu_run(tiny_cfg, tmp_path, name: str, graph: bool, **keys):
    cfg = tiny_cfg.copy()
    cfg.paths.output = str(tmp_path / name)
    cfg.trainer.accelerator = "gpu"
    cfg.trainer.limit_val_batches = 4
    cfg.data.on_device = True
    cfg.model.cuda_graph = graph
    for key, value in keys.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.mark.gpu
@pytest.mark.parametrize("graph", [True, False], ids=["cuda-graph", "eager"])
def test_training_and_validation_steps_do_not_sync_the_gpu(tiny_cfg, tmp_path, graph):
    cfg = gpu_run(tiny_cfg, tmp_path, "nosync", graph, **{"data.limit": 512})
    try:
        metrics = train(cfg, extra_callbacks=[NoSyncSteps()])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert metrics["val/loss"] > 0


@pytest.mark.gpu
def test_the_cuda_graph_trains_as_the_eager_step_does(tiny_cfg, tmp_path):
    losses = {
        graph: train(gpu_run(tiny_cfg, tmp_path, str(graph), graph))["val/loss"]
        for graph in (True, False)
    }
    assert losses[True] == pytest.approx(losses[False], rel=TOLERANCE)


@pytest.mark.gpu
def test_conditional_graph_run_resumes_on_cuda_and_draws_its_pictures(tiny_cfg, tmp_path):
    first = gpu_run(tiny_cfg, tmp_path, "first", True, **{"model.conditional": True})
    first.trainer.max_epochs = 1
    train(first)
    resumed = gpu_run(tiny_cfg, tmp_path, "resumed", True, **{"model.conditional": True})
    resumed.ckpt_path = str(tmp_path / "first")
    metrics = train(resumed)
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 16 and metrics["train/loss"] > 0
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())
    assert (tmp_path / "resumed" / "images" / "traversal.png").is_file()  # labels on CUDA


@pytest.mark.gpu
@pytest.mark.slow
def test_the_graph_path_outruns_a_plain_eager_loop(tmp_path):
    """A ratio in one process, not a time: the project's graph-captured training against the
    plain eager loop of benchmarks/throughput.py, same steps, bf16, channels_last."""
    import importlib.util

    from cvae_lightning.paths import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location(
        "throughput", PROJECT_ROOT / "benchmarks" / "throughput.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = bench.compose_project(128, 250, tmp_path, ["trainer=gpu", "trainer.precision=bf16-mixed"])
    device = torch.device("cuda")
    plain = bench.run_plain(cfg, device, warmup=50, steps=200)
    project = bench.run_project(cfg, warmup=50, steps=200)
    assert project > plain, f"project {project:.0f} im/s vs plain eager loop {plain:.0f}"
