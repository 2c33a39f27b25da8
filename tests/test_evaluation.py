"""eval.py and the quality measures behind it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from cvae_lightning.errors import ConfigError
from cvae_lightning.evaluation.evaluate import evaluate_config
from cvae_lightning.evaluation.reconstruction import active_units, iwae_loss, knn_accuracy
from cvae_lightning.paths import PROJECT_ROOT
from cvae_lightning.vae.losses import FIXED, kl_divergence

from conftest import load_run, read_images, user_error


@pytest.fixture(scope="module")
def model_and_images(trained_run, cache_dir):
    model, _ = load_run(trained_run[2])
    images, _ = read_images(PROJECT_ROOT / "data", "mnist", False, 16, cache_dir)
    return model, images[:256].float().div(255)


def test_iwae_with_one_sample_is_the_elbo(model_and_images):
    model, x = model_and_images
    torch.manual_seed(0)
    iwae1 = iwae_loss(model, x, k=1).mean().item()
    torch.manual_seed(1)
    z, mu, logvar = model.encode(x)
    elbo = (FIXED(model.decode(z), x) + kl_divergence(mu, logvar)).item() / len(x)
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
    assert -gaussian.item() == pytest.approx(FIXED(x_rec, x).item() + FIXED.constant(5), rel=1e-6)


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
         "eval.kid_subset=300", f"out={out}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "metrics.json").read_text())
    m = record["metrics"]
    assert record["images"] == 512 and record["iwae_images"] == 64
    assert m["test/loss"] == pytest.approx(m["test/recon"] + m["test/kl"], rel=1e-6)
    assert m["test/neg_elbo_nats"] == pytest.approx(m["test/loss"] + FIXED.constant(256))
    assert 0 < m["test/ssim"] <= 1 and m["test/psnr"] > 5
    assert 0 <= m["latent/active_units"] <= 8 and m["latent/knn5_accuracy"] > 0.3
    # Every density's samples, measured against the test images beside the floor of real
    # training images: the whole block, side by side.
    for name in ("standard", "gaussian", "gmm", "flow"):
        p = f"samples/{name}"
        assert m[f"{p}/fid"] > m["real/fid_train_vs_test"] > 0
        assert m[f"{p}/kid"] > m["real/kid_train_vs_test"]
        assert 0 < m[f"{p}/confidence"] <= 1 and 0 <= m[f"{p}/confident_share"] <= 1
        assert 0 <= m[f"{p}/digit_evenness"] <= 1 and 0 <= m[f"{p}/rarest_digit_share"] <= 0.1
        assert 0 <= m[f"{p}/precision"] <= 1 and 0 <= m[f"{p}/recall"] <= 1
        assert m[f"{p}/train_nn_ratio"] > 0
        assert f"{p}/class_accuracy" not in m  # only conditional models are asked for digits
        assert sum(record["digit_shares"][name]) == pytest.approx(1)
    assert 0.5 < m["real/precision"] <= 1 and 0.5 < m["real/recall"] <= 1
    assert m["real/class_accuracy"] > 0.9  # 16px images lose detail: 94.5% measured
    assert 0 <= m["test/recon_class_accuracy"] <= 1
    assert 0 <= m["test/recon_confident_share"] <= 1
    assert record["samples"] == 600
    # The fitted density of lowest FID, judged again at eval.temperatures' spreads beside the
    # one it was drawn at (density.temperature, 0.9): the run's spread is the lowest FID's.
    fitted = min(("gaussian", "gmm", "flow"), key=lambda n: m[f"samples/{n}/fid"])
    sweep = {t: m[f"sweep/{t}/fid"] for t in ("0.6", "0.7", "0.8", "0.9", "1")}
    assert sweep["0.9"] == m[f"samples/{fitted}/fid"] and len(set(sweep.values())) == 5
    assert m["sweep/temperature"] == float(min(sweep, key=sweep.get))
    assert record["classifier"]["test_accuracy"] >= 0.99
    table = proc.stdout[proc.stdout.index("density  ") :].splitlines()
    assert table[0].split() == ["density", "fid", "kid", "p>0.9", "evenness", "rarest",
                                "precision", "recall", "nn_ratio"]  # fmt: skip
    assert [row.split()[0] for row in table[1:6]] == ["standard", "gaussian", "gmm", "flow", "real"]
    assert "lower is better: fid, kid" in table[6] and "higher is better" in table[7]  # a legend
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert not Path(record["checkpoint"]).is_absolute() or not record["checkpoint"].startswith(
        str(PROJECT_ROOT)
    )  # paths inside the project are recorded relative to it


def test_eval_refuses_a_bad_classifier_file_in_one_line(trained_run, tmp_path, capsys):
    bad = tmp_path / "clf.pt"
    bad.write_bytes(b"garbage")
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={trained_run[2]}", f"eval.classifier={bad}",
                                         f"out={tmp_path / 'eval'}"])  # fmt: skip
    assert user_error(capsys, evaluate_config, cfg) == (
        2,
        [
            f"error: classifier weights {bad} are corrupt or not a cvae-lightning classifier "
            "(UnpicklingError): restore it with `git checkout -- weights/` or rebuild it with "
            "`uv run train_classifier.py`"
        ],
    )
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("override", ["eval.samples=-1", "eval.iwae_k=0", "eval.temperature=0"])
def test_eval_config_is_checked_before_any_work(tmp_path, override):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={tmp_path}", override])
    with pytest.raises(ConfigError, match=override.replace(".", r"\.")):
        evaluate_config(cfg)  # the checkpoint folder is empty: the config is refused first


def test_eval_fits_the_densities_the_run_has_not_stored(trained_run, cache_dir, tmp_path, caplog):
    """The run stored densities of posterior means; asked for sampled codes, eval fits its own
    and leaves the run's file as it was."""
    stored = trained_run[2] / "checkpoints" / "densities.pt"
    before = stored.read_bytes()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=[
            f"ckpt_path={trained_run[2]}", f"data.cache_dir={cache_dir}", "density.codes=sample",
            "eval.images=256", "eval.samples=256", "eval.kid_subset=64", "eval.iwae_k=2",
            "eval.iwae_images=8", "eval.knn_train=500", f"out={tmp_path}",
        ])  # fmt: skip
    with caplog.at_level("INFO"):
        m = evaluate_config(cfg)
    assert f"{stored} was fitted on codes=mean, not codes=sample" in caplog.text
    assert all(f"samples/{n}/fid" in m for n in ("standard", "gaussian", "gmm", "flow"))
    assert stored.read_bytes() == before
