"""The Python API: the README's snippet, the Hub layout round trip, Hub ids, bad input."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cvae_lightning import PretrainedVAE, load_pretrained
from cvae_lightning.errors import CheckpointError, ConfigError
from cvae_lightning.files import read_tensors
from cvae_lightning.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def readme_snippet() -> tuple[str, str]:
    """The README's "Use it from Python" code and the output it says the code prints."""
    section = README.split("## Use it from Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    printed = re.search(r"prints `([^`]*)`", section).group(1)
    return code, printed


def test_the_readme_snippet_runs_and_prints_what_the_readme_says(tmp_path, monkeypatch, capsys):
    code, printed = readme_snippet()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == printed
    assert (tmp_path / "samples.png").is_file()
    saved = load_pretrained(tmp_path / "my_vae")
    assert torch.equal(saved.generate(4, seed=3), load_pretrained().generate(4, seed=3))


def outputs(vae: PretrainedVAE, label=None) -> list[torch.Tensor]:
    x = vae.generate(6, seed=1, label=label)
    mu, logvar = vae.encode(x, label)
    drawn = [vae.generate(6, seed=2, prior=p, label=label) for p in vae.densities]
    return [x, mu, logvar, vae.decode(mu, label), *drawn]


def test_save_pretrained_then_load_pretrained_gives_identical_outputs(tmp_path):
    vae = load_pretrained()
    folder = vae.save_pretrained(tmp_path / "saved")
    assert {p.name for p in folder.iterdir()} == {
        "config.json", "model.safetensors", "densities.safetensors", "README.md"
    }  # fmt: skip
    again = load_pretrained(folder)
    assert again.best == vae.best and again.temperature == vae.temperature
    assert (
        sorted(again.densities) == sorted(vae.densities) == ["flow", "gaussian", "gmm", "standard"]
    )
    for a, b in zip(outputs(vae), outputs(again), strict=True):
        assert torch.equal(a, b)
    # The weights file is plain safetensors: the model's own state_dict, nothing pickled.
    tensors, _ = read_tensors(folder / "model.safetensors")
    assert tensors.keys() == vae.model.state_dict().keys()


def test_a_conditional_run_loads_with_its_class_names_and_draws_the_class_asked_for(
    colour_run, tmp_path
):
    base, _, _ = colour_run
    vae = load_pretrained(base / "run")  # a run folder: its last checkpoint and densities
    assert vae.classes == ["blue", "green", "red"] and vae.channels == 3
    reds = vae.generate(16, seed=0, label="red")
    blues = vae.generate(16, seed=0, label="blue")
    # The fixture tints its class folders by green level: none for "red", 80/255 for "blue".
    assert blues[:, 1].mean() - reds[:, 1].mean() > 0.15
    mixed = vae.generate(3, seed=0, label=["red", "green", 0])
    assert mixed.shape == (3, 3, 16, 16)
    again = load_pretrained(vae.save_pretrained(tmp_path / "saved"))
    assert again.classes == vae.classes
    for a, b in zip(outputs(vae, "green"), outputs(again, "green"), strict=True):
        assert torch.equal(a, b)
    strip = vae.interpolate(reds[0], blues[0], steps=5, label="red")
    assert strip.shape == (5, 3, 16, 16)
    with pytest.raises(ConfigError, match="this model is conditional: pass label="):
        vae.generate(2)
    with pytest.raises(ConfigError, match="label=cat is invalid"):
        vae.generate(2, label="cat")


def test_bad_input_gets_a_clear_error(tmp_path):
    vae = load_pretrained()
    with pytest.raises(ConfigError, match=r"do not fit this model: it takes \(N, 1, 64, 64\)"):
        vae.encode(torch.rand(2, 3, 32, 32))
    with pytest.raises(ConfigError, match="needs a conditional model"):
        vae.generate(2, label=3)
    with pytest.raises(ConfigError, match="prior=mean is not stored"):
        vae.generate(2, prior="mean")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "nothing.ckpt")
    broken = tmp_path / "broken"
    shutil.copytree(PROJECT_ROOT / "weights" / "mnist_cvae", broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_pretrained(broken)


def test_push_to_hub_uploads_a_folder_that_loads_back(monkeypatch, tmp_path):
    """The Hub cannot be reached here: a stand-in for its client keeps what would be sent."""
    import cvae_lightning.inference.hub as hub

    calls = []

    class FakeHub:
        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls.append(("create_repo", repo_id, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message):
            shutil.copytree(folder_path, tmp_path / "uploaded")
            calls.append(("upload_folder", repo_id, commit_message))
            return "https://huggingface.co/someone/mnist-cvae/commit/0"

    monkeypatch.setattr(hub, "hub_api", lambda token=None: FakeHub())
    vae = load_pretrained()
    assert vae.push_to_hub("someone/mnist-cvae").endswith("/commit/0")
    assert [c[0] for c in calls] == ["create_repo", "upload_folder"]
    assert torch.equal(load_pretrained(tmp_path / "uploaded").generate(4, seed=0),
                       vae.generate(4, seed=0))  # fmt: skip


def test_a_hub_id_loads_from_the_hugging_face_cache_offline(tmp_path):
    """load_pretrained("user/name") through huggingface_hub itself, reading its offline cache
    (the layout the client writes when it downloads); an id not in the cache is one error."""
    repo = tmp_path / "hub" / "models--someone--mnist-cvae"
    revision = "0" * 40
    shutil.copytree(PROJECT_ROOT / "weights" / "mnist_cvae", repo / "snapshots" / revision,
                    ignore=shutil.ignore_patterns("eval"))  # fmt: skip
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    script = (
        "from cvae_lightning import load_pretrained\n"
        "from cvae_lightning.errors import CheckpointError\n"
        "a = load_pretrained('someone/mnist-cvae').generate(4, seed=0)\n"
        "b = load_pretrained().generate(4, seed=0)\n"
        "print('same' if (a - b).abs().max() < 1e-6 else 'different')\n"
        "try:\n    load_pretrained('someone/absent')\n"
        "except CheckpointError as e:\n    print(e)\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
        cwd=Path(tmp_path),
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0] == "same"
    assert lines[1].startswith("someone/absent cannot be loaded from the Hugging Face Hub")
