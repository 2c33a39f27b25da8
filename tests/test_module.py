import shutil
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from cvae_lightning.training.epoch_sums import EpochSums, means
from cvae_lightning.vae.losses import FIXED, kl_divergence


@pytest.fixture
def module(tiny_cfg):
    torch.manual_seed(0)
    return instantiate(tiny_cfg.model)


def test_optimizer_is_the_reference_adamw(tiny_cfg, module):
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["lr"] == 1e-3 and opt.defaults["weight_decay"] == 1e-5
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(module.parameters()))


def test_objective_is_summed_mse_plus_kl(module):
    x = torch.rand(8, 1, 16, 16)
    torch.manual_seed(1)
    terms = module.objective(x)
    torch.manual_seed(1)
    x_rec, mu, logvar = module.model(x)
    assert terms["recon"].item() == pytest.approx(FIXED(x_rec, x).item(), rel=1e-6)
    assert terms["kl"].item() == pytest.approx(kl_divergence(mu, logvar).item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + terms["kl"]).item(), rel=1e-6)


def test_epoch_means_are_per_image_and_read_nothing_per_step(module):
    x = torch.rand(8, 1, 16, 16)
    module.sums["train"].reset("cpu")
    steps = [module._step((x, None), "train", step=i + 1) for i in range(3)]
    mean = means(module.sums["train"].totals())
    assert module.sums["train"].images == 24
    assert mean["loss"].item() == pytest.approx(sum(t["loss"].item() for t in steps) / 24, rel=1e-6)
    assert mean["kl"].item() == pytest.approx(sum(t["kl"].item() for t in steps) / 24, rel=1e-6)
    assert module.sums["train"].first_bad.item() == -1  # every loss was finite


def test_the_first_non_finite_step_is_noted_on_the_device():
    sums = EpochSums()
    sums.reset("cpu")
    finite = {"loss": torch.tensor(1.0), "recon": torch.tensor(1.0), "kl": torch.tensor(0.0)}
    nan = {"loss": torch.tensor(float("nan")), "recon": torch.tensor(1.0), "kl": torch.tensor(0.0)}
    for step, terms in enumerate([finite, nan, finite, nan], start=1):
        sums.add(terms, 4, step)
    assert sums.first_bad.item() == 2


def test_uint8_batches_become_floats_in_the_step(module):
    pixels = torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8)
    x = module.model_input(pixels)
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, pixels.float() / 255)


def test_checkpoint_hparams_are_plain_values(module):
    assert "optimizer" not in module.hparams
    assert dict(module.hparams) == {
        "architecture": "reference",
        "likelihood": "fixed",
        "latent": 8,
        "max_filters": 16,
        "image_size": 16,
        "channels": 1,
        "channels_last": True,
        "compile": False,
        "conditional": False,
        "num_classes": 10,
        "classes": [str(d) for d in range(10)],  # plain strings, not a ListConfig
        "beta": 1.0,
        "kl_warmup_epochs": 0,
        "cuda_graph": "auto",  # train() resolves it for its machine
    }
    assert type(module.hparams["classes"]) is list


def test_channels_last_gives_the_same_loss(tiny_cfg):
    x = torch.rand(4, 1, 16, 16)
    losses = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        m = instantiate(tiny_cfg.model, channels_last=channels_last)
        torch.manual_seed(1)
        losses.append(m._step((x, None), "val")["loss"].item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


@pytest.mark.parametrize(
    "overrides,check",
    [
        # beta = 0: the objective is the reconstruction alone; KL is still reported.
        (["model.beta=0"], lambda m: m["train/loss"] == pytest.approx(m["train/recon"])),
        # A warm-up over both epochs: the last epoch reaches beta = 1 (logged), and its mean
        # objective is below recon + KL (the first steps of it weighted KL less).
        (["model.kl_warmup_epochs=2"], lambda m: m["train/kl_weight"] == pytest.approx(1.0)
         and m["train/loss"] < m["train/recon"] + m["train/kl"] - 1e-3),
    ],
)  # fmt: skip
def test_beta_and_kl_warm_up_change_the_objective(tiny_cfg, overrides, check):
    from cvae_lightning.training.train import train

    from conftest import TINY, compose_config

    cfg = compose_config(*TINY, *overrides, f"data.cache_dir={tiny_cfg.data.cache_dir}",
                         "~callbacks.densities", "~callbacks.latent")  # fmt: skip
    cfg.paths.output = tiny_cfg.paths.output
    cfg.trainer.enable_progress_bar = False
    metrics = train(cfg)
    assert metrics["train/kl"] > 0 and check(metrics)
    assert read_hparams_of(cfg)["model.beta"] == cfg.model.beta  # recorded in HParams


def read_hparams_of(cfg) -> dict:
    from pathlib import Path

    from conftest import read_hparams

    return read_hparams(Path(cfg.paths.output))[0]


def run_tiny(tiny_cfg, *overrides, callbacks=(), graph_step=False, monkeypatch=None):
    """A tiny training run (train()) with `overrides`; graph_step: the manual step that
    model.cuda_graph captures on a GPU, run eagerly here (no CUDA graph on a CPU)."""
    from cvae_lightning.training.train import train

    from conftest import TINY, compose_config

    cfg = compose_config(*TINY, *overrides, f"data.cache_dir={tiny_cfg.data.cache_dir}",
                         "~callbacks.densities", "~callbacks.latent")  # fmt: skip
    cfg.paths.output = tiny_cfg.paths.output
    cfg.trainer.enable_progress_bar = cfg.callbacks.progress_bar is not None
    if graph_step:
        import cvae_lightning.training.train as training

        monkeypatch.setattr(training, "choose_cuda_graph", lambda *a: (True, None))
    return cfg, train(cfg, extra_callbacks=list(callbacks))


@pytest.mark.parametrize("graph_step", [False, True], ids=["automatic", "manual-step"])
def test_training_steps_read_nothing_from_the_device(tiny_cfg, graph_step, monkeypatch):
    from helpers.host_reads import CountHostReads

    # The console's line, the NaN guard, the progress bar (showing the first epoch's val/*)
    # and a KL warm-up at every step of the window: steps 2-5 of the second epoch.
    counter = CountHostReads(first=10, last=13)
    bar = "{_target_:lightning.pytorch.callbacks.TQDMProgressBar,refresh_rate:1}"
    _, metrics = run_tiny(
        tiny_cfg, "callbacks.console.every_n_steps=1", "callbacks.nan_guard.check_every_n_steps=1",
        "model.kl_warmup_epochs=2", f"callbacks.progress_bar={bar}", callbacks=[counter],
        graph_step=graph_step, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert counter.calls == []
    assert metrics["train/loss"] > 0  # the run did train (and was read once per epoch)


def test_the_manual_step_trains_exactly_as_automatic_optimisation(tiny_cfg, monkeypatch):
    from conftest import read_events

    def final(graph_step):
        cfg, metrics = run_tiny(tiny_cfg, graph_step=graph_step, monkeypatch=monkeypatch)
        run = Path(cfg.paths.output)
        state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
        losses = [e.value for e in read_events(run).Scalars("train/loss")]
        shutil.rmtree(run)
        return state, metrics, losses

    auto, manual = final(False), final(True)
    assert auto[0]["global_step"] == manual[0]["global_step"] == 16  # replays are counted
    for key, value in auto[0]["state_dict"].items():
        assert torch.equal(value, manual[0]["state_dict"][key]), key
    assert auto[1]["train/loss"] == manual[1]["train/loss"]
    assert auto[2] == manual[2] and len(auto[2]) == 2  # one train/loss per epoch


def test_epoch_means_are_the_mean_of_the_step_losses(tiny_cfg):
    import lightning as L

    class StepLosses(L.Callback):
        def __init__(self):
            self.by_epoch = {}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            epoch = self.by_epoch.setdefault(trainer.current_epoch, [])
            epoch.append(outputs["loss"].item() / batch[0].shape[0])

    steps = StepLosses()
    _, metrics = run_tiny(tiny_cfg, callbacks=[steps])
    last = steps.by_epoch[1]
    assert len(last) == 8
    assert metrics["train/loss"] == pytest.approx(sum(last) / len(last), rel=1e-6)
