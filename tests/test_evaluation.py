"""eval.py and the quality measures behind it."""

import json
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir

from cvae_lightning.checks import ConfigError
from cvae_lightning.datasets import load_resized
from cvae_lightning.evaluation import evaluate
from cvae_lightning.losses import kl_divergence, reconstruction_loss
from cvae_lightning.metrics import active_units, iwae_loss, knn_accuracy, likelihood_constant
from cvae_lightning.sampling import load_model
from cvae_lightning.training import PROJECT_ROOT


@pytest.fixture(scope="module")
def model_and_images(trained_run, cache_dir):
    model, _ = load_model(trained_run[2])
    images, _ = load_resized(PROJECT_ROOT / "data", "mnist", False, 16, cache_dir)
    return model, images[:256].float().div(255)


def test_iwae_with_one_sample_is_the_elbo(model_and_images):
    model, x = model_and_images
    torch.manual_seed(0)
    iwae1 = iwae_loss(model, x, k=1).mean().item()
    torch.manual_seed(1)
    z, mu, logvar = model.encode(x)
    elbo = (reconstruction_loss(model.decode(z), x) + kl_divergence(mu, logvar)).item() / len(x)
    # Same expectation; the two estimates differ only by Monte Carlo noise.
    assert iwae1 == pytest.approx(elbo, rel=0.02)


def test_iwae_bound_tightens_with_more_samples(model_and_images):
    model, x = model_and_images
    values = []
    for k in (1, 10, 50):
        torch.manual_seed(0)
        values.append(iwae_loss(model, x, k=k).mean().item())
    assert values[0] > values[1] > values[2]


def test_likelihood_constant_makes_the_gaussian_exact():
    x, x_rec = torch.rand(5), torch.rand(5)
    gaussian = torch.distributions.Normal(x_rec, (0.5) ** 0.5).log_prob(x).sum()
    assert -gaussian.item() == pytest.approx(
        reconstruction_loss(x_rec, x).item() + likelihood_constant(5), rel=1e-6
    )


def test_active_units_and_knn_probe():
    mu = torch.zeros(100, 4)
    mu[:, 0] = torch.linspace(-2, 2, 100)  # one informative dimension
    mu[:, 1] = 0.001 * torch.randn(100)
    assert active_units(mu) == 1
    labels = (mu[:, 0] > 0).long()
    assert knn_accuracy(mu[::2], labels[::2], mu[1::2], labels[1::2], k=3) == 1.0


def test_eval_script_writes_json(trained_run, cache_dir, tmp_path):
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "eval.py"), f"ckpt_path={trained_run[2]}",
         f"data.cache_dir={cache_dir}", "eval.images=512", "eval.iwae_k=5",
         "eval.iwae_images=64", "eval.knn_train=1000", "eval.samples=600",
         "eval.kid_subset=300", f"out_dir={out}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "metrics.json").read_text())
    m = record["metrics"]
    assert record["images"] == 512 and record["iwae_images"] == 64
    assert m["test/loss"] == pytest.approx(m["test/recon"] + m["test/kl"], rel=1e-6)
    assert m["test/neg_elbo_nats"] == pytest.approx(m["test/loss"] + likelihood_constant(256))
    assert 0 < m["test/ssim"] <= 1 and m["test/psnr"] > 5
    assert 0 <= m["latent/active_units"] <= 8 and m["latent/knn5_accuracy"] > 0.3
    # FID/KID against the test images, beside the floor of real training images
    assert m["samples/fid"] > m["real/fid_train_vs_test"] > 0
    assert m["samples/kid"] > m["real/kid_train_vs_test"]
    assert 0 < m["samples/confidence"] <= 1 and 0 <= m["samples/digit_evenness"] <= 1
    assert m["real/class_accuracy"] > 0.9  # 16px images lose detail: 94.5% measured
    assert 0 <= m["test/recon_class_accuracy"] <= 1
    assert "samples/class_accuracy" not in m  # only conditional models are asked for digits
    assert record["samples"] == 600 and sum(record["digit_shares"]["samples"]) == pytest.approx(1)
    assert record["classifier"]["test_accuracy"] >= 0.99
    assert "samples/fid" in proc.stdout and "floor" in proc.stdout
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_eval_refuses_a_bad_classifier_file_in_one_line(trained_run, tmp_path):
    bad = tmp_path / "clf.pt"
    bad.write_bytes(b"garbage")
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "eval.py"), f"ckpt_path={trained_run[2]}",
         f"eval.classifier={bad}", f"out_dir={tmp_path / 'eval'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: classifier weights {bad} are corrupt or not a cvae-lightning classifier "
        "(UnpicklingError): restore it with `git checkout -- weights/` or rebuild it with "
        "`uv run train_classifier.py`"
    ]
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("override", ["eval.samples=-1", "eval.iwae_k=0", "eval.temperature=0"])
def test_eval_config_is_checked_before_any_work(tmp_path, override):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={tmp_path}", override])
    with pytest.raises(ConfigError, match=override.replace(".", r"\.")):
        evaluate(cfg)  # the checkpoint folder is empty: the config is refused first
