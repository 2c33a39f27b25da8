"""model=resnet: the deeper network, sized by the image and its keys, and a whole run of it."""

import numpy as np
import pytest
import torch

from cvae_lightning.vae.model import CVAE, count_parameters
from cvae_lightning.vae.resnet import stage_widths

PARAMETERS_AT_64 = 5_500_195


def resnet(**kwargs) -> CVAE:
    sizes = {"latent": 128, "image_size": 64, "channels": 3, "architecture": "resnet"}
    return CVAE(**{**sizes, **kwargs})


@pytest.mark.parametrize("size,bottom,stages", [(32, 8, 2), (64, 8, 3), (128, 8, 4), (64, 4, 4)])
def test_one_stage_per_halving_down_to_the_bottom(size, bottom, stages):
    model = resnet(image_size=size, bottom=bottom, latent_map=0, latent=64).eval()
    assert len(model.encoder.stages) == len(model.decoder.stages) == stages
    x = torch.rand(2, 3, size, size)
    x_rec, mu, logvar = model(x)
    assert x_rec.shape == x.shape and mu.shape == logvar.shape == (2, 64)
    assert x_rec.min() >= 0 and x_rec.max() <= 1


def test_widths_double_up_to_the_cap():
    assert stage_widths(128, 4, 16, 256) == [16, 32, 64, 128, 256, 256]
    assert stage_widths(64, 8, 32, 64) == [32, 64, 64, 64]


def test_the_parameter_count_grows_with_a_stage_not_with_the_square_of_the_size():
    small, large = resnet(), resnet(image_size=128)
    at_64, at_128 = count_parameters(small), count_parameters(large)
    # The defaults (conf/model/resnet.yaml: width 16, one block a stage, a vector latent of
    # 128 read from a 4x4 map).
    assert at_64 == PARAMETERS_AT_64
    # One more stage (at width 256); the heads read the same 4x4 map, so they keep their size.
    assert small.latent == large.latent == 128
    assert small.encoder.mu.weight.shape == large.encoder.mu.weight.shape
    assert at_128 < 2 * at_64
    # A spatial latent (2 x 8 x 8, read by 1x1 convs): the same 128 values at any size.
    spatial = [resnet(image_size=s, latent_map=2, bottom=8) for s in (64, 128)]
    assert spatial[0].latent == spatial[1].latent == 128
    assert all(m.encoder.mu.kernel_size == (1, 1) for m in spatial)


def test_a_spatial_latent_is_a_vector_to_everything_outside():
    model = resnet(image_size=128, bottom=8, latent_map=4, latent=4 * 8 * 8).eval()
    z, mu, _ = model.encode(torch.rand(3, 3, 128, 128))
    assert z.shape == mu.shape == (3, 256)
    assert model.decode(z).shape == (3, 3, 128, 128)
    assert model.sample(2).shape == (2, 3, 128, 128)


def test_a_conditional_resnet_draws_from_the_label():
    torch.manual_seed(0)
    model = resnet(num_classes=4).eval()
    for film in model.decoder.label_film.layers:  # a trained model's FiLM is not zero
        torch.nn.init.normal_(film.weight)
    z = torch.randn(2, 128)
    a, b = model.decode(z, torch.tensor([0, 0])), model.decode(z, torch.tensor([3, 3]))
    assert not torch.allclose(a, b)


def test_group_norm_is_an_option():
    model = resnet(norm="group")
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_the_calibrated_likelihood_is_saved_with_the_weights():
    model = resnet(likelihood="optimal")
    assert "likelihood.log_sigma" in model.state_dict()
    assert "likelihood.log_sigma" not in CVAE().state_dict()  # the reference: as before


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"image_size": 48}, "data.image_size=48 is invalid for model=resnet"),
        ({"bottom": 2}, "model.bottom=2 is invalid"),
        ({"norm": "layer"}, "model.norm='layer' is invalid"),
        ({"max_width": 8}, "model.max_width=8 is invalid"),
        ({"latent_map": 1}, "model.latent=128 is invalid with model.latent_map=1"),
        ({"max_filters_typo": 2}, "model.max_filters_typo is not a key of model.architecture"),
        ({"architecture": "unet"}, "model.architecture='unet' is invalid"),
    ],
)
def test_impossible_settings_name_their_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resnet(**kwargs)


# -- a whole run with model=resnet: train, resume, the API, export, eval, the explorer ---------


def resnet_cfg(base, folder, out, *extra):
    from conftest import TINY, compose_config

    cfg = compose_config(
        *TINY, "model=resnet", "model.width=8", "data=folder", f"data.path={folder}",
        f"data.cache_dir={base / 'cache'}", "data.image_size=16", "data.limit=null",
        "data.batch_size=16", "model.conditional=true", "trainer.max_epochs=4", *extra,
    )  # fmt: skip
    cfg.paths.output = str(out)
    cfg.trainer.enable_progress_bar = False
    return cfg


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    """A tiny conditional model=resnet run on three tinted class folders."""
    from cvae_lightning.training.train import train

    from conftest import class_folder

    base = tmp_path_factory.mktemp("resnet")
    folder = class_folder(base / "imgs", classes=("red", "green", "blue"), per_class=40,
                          colour=True)  # fmt: skip
    metrics = train(resnet_cfg(base, folder, base / "run"))
    return base, folder, metrics


def test_a_resnet_run_learns_its_sigma_and_keeps_its_architecture(resnet_run):
    base, _, metrics = resnet_run
    ckpt = torch.load(base / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    hp = ckpt["hyper_parameters"]
    assert hp["architecture"] == "resnet" and hp["likelihood"] == "optimal"
    assert hp["latent"] == 128 and hp["width"] == 8 and hp["conditional"]
    # The decoder's sigma fell from its start (1) as reconstructions improved.
    assert 0 < metrics["train/sigma"] < 0.5
    assert "model.likelihood.log_sigma" in ckpt["state_dict"]


def test_a_resnet_run_resumes_exactly(resnet_run, tmp_path):
    from cvae_lightning.training.train import train

    base, folder, _ = resnet_run
    runs = {}
    for name, epochs, resume in (("straight", 2, None), ("first", 1, None),
                                 ("resumed", 2, tmp_path / "first")):  # fmt: skip
        cfg = resnet_cfg(base, folder, tmp_path / name, f"trainer.max_epochs={epochs}",
                         "trainer.deterministic=true")  # fmt: skip
        cfg.ckpt_path = str(resume) if resume else None
        train(cfg)
        runs[name] = torch.load(tmp_path / name / "checkpoints" / "last.ckpt",
                                weights_only=True)["state_dict"]  # fmt: skip
    for key, value in runs["straight"].items():
        assert torch.equal(value, runs["resumed"][key]), key


def test_a_resnet_loads_saves_and_draws_the_class_asked_for(resnet_run, tmp_path):
    from cvae_lightning import load_pretrained

    base, _, _ = resnet_run
    vae = load_pretrained(base / "run", device="cpu")
    assert vae.classes == ["blue", "green", "red"] and vae.latent == 128
    red, blue = vae.generate(8, seed=0, label="red"), vae.generate(8, seed=0, label="blue")
    assert red.shape == (8, 3, 16, 16)
    # The fixture tints its class folders by green level: none for "red", 80/255 for "blue".
    assert blue[:, 1].mean() > red[:, 1].mean() + 0.05
    again = load_pretrained(vae.save_pretrained(tmp_path / "saved"))
    assert torch.equal(again.model.likelihood.log_sigma, vae.model.likelihood.log_sigma)
    assert torch.equal(again.generate(4, seed=1, label=1), vae.generate(4, seed=1, label=1))


def test_a_resnet_exports_to_onnx_that_agrees(resnet_run, tmp_path):
    import onnxruntime as ort

    from cvae_lightning.inference.onnx import export

    base, _, _ = resnet_run
    manifest = export(base / "run", tmp_path / "onnx")
    assert manifest["latent"] == 128 and manifest["image_size"] == 16
    from conftest import load_run

    model, _ = load_run(base / "run")
    z, label = torch.randn(5, 128), torch.tensor([0, 1, 2, 1, 0])
    session = ort.InferenceSession(str(tmp_path / "onnx" / "decoder.onnx"))
    (image,) = session.run(None, {"z": z.numpy(), "label": label.numpy()})
    assert abs(image - model.decode(z, label).detach().numpy()).max() < 1e-4


def test_eval_reports_a_resnets_likelihood_in_nats(resnet_run, tmp_path):
    from cvae_lightning.evaluation.evaluate import evaluate
    from cvae_lightning.inference.run_data import DataSource

    from conftest import compose_config

    base, _, _ = resnet_run
    cfg = compose_config("debug=tiny", "eval.samples=0")
    m = evaluate(base / "run", settings=cfg.eval, density=cfg.density, data=DataSource(),
                 out=tmp_path / "eval")  # fmt: skip
    # A calibrated likelihood is in nats already: no constant to add.
    assert m["test/neg_elbo_nats"] == pytest.approx(m["test/loss"])
    assert m["test/iwae5_nll_nats"] <= m["test/neg_elbo_nats"] + 1.0
    assert m["test/recon_sse"] > 0 and 0 < m["test/ssim"] <= 1


def test_the_explorer_serves_a_resnet(resnet_run):
    from hydra.utils import instantiate

    from cvae_lightning.app.explorer import Explorer
    from cvae_lightning.inference.run_data import DataSource

    from conftest import compose_config

    base, _, _ = resnet_run
    fitters = dict(instantiate(compose_config("debug=tiny").density.fitters))
    e = Explorer.load(base / "run", DataSource(), fitters, test_images=30)
    assert len(e.ranges) == 128
    picture = e.decode(e.start("test", 3), label="green")
    assert picture.shape[2] == 3 and picture.dtype == np.uint8
    assert e.sample("auto", count=4, label="red").shape[2] == 3
