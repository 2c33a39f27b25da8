import pytest
import torch
from hydra.utils import instantiate

from cvae_lightning.losses import kl_divergence, reconstruction_loss


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
    assert terms["recon"].item() == pytest.approx(reconstruction_loss(x_rec, x).item(), rel=1e-6)
    assert terms["kl"].item() == pytest.approx(kl_divergence(mu, logvar).item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + terms["kl"]).item(), rel=1e-6)


def test_metrics_are_per_image(module):
    x = torch.rand(8, 1, 16, 16)
    terms = module.training_step((x, torch.zeros(8)), 0)
    means = module.train_metrics.compute()
    assert means["train/loss"].item() == pytest.approx(terms["loss"].item() / 8, rel=1e-5)
    assert means["train/kl"].item() == pytest.approx(terms["kl"].item() / 8, rel=1e-5)


def test_checkpoint_hparams_are_plain_values(module):
    assert "optimizer" not in module.hparams
    assert dict(module.hparams) == {
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
    }
    assert type(module.hparams["classes"]) is list


def test_channels_last_gives_the_same_loss(tiny_cfg):
    x = torch.rand(4, 1, 16, 16)
    losses = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        m = instantiate(tiny_cfg.model, channels_last=channels_last)
        torch.manual_seed(1)
        losses.append(m._step((x, None), m.train_metrics)["loss"].item())
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
    from cvae_lightning.training import train

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
