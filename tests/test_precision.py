"""trainer.precision=auto: bf16 where the hardware runs it natively, fp32 elsewhere."""

from pathlib import Path

import pytest
import torch

from cvae_lightning.training import precision
from cvae_lightning.training.precision import choose_precision


@pytest.fixture
def cpu(monkeypatch):
    """Fake the CPU's instruction probes: cpu(amx=..., avx512_bf16=...)."""

    def fake(amx: bool, avx512_bf16: bool) -> None:
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    return fake


@pytest.mark.parametrize("amx,avx", [(True, True), (True, False), (False, True)])
def test_a_cpu_with_bf16_instructions_gets_bf16(cpu, amx, avx):
    cpu(amx, avx)
    chosen, why = choose_precision("auto")
    assert chosen == "bf16-mixed" and "runs natively" in why
    assert ("AMX" in why) == amx and ("AVX512-BF16" in why) == avx


def test_a_cpu_without_them_keeps_fp32(cpu):
    cpu(False, False)
    assert choose_precision("cpu") == (
        "32-true",
        "the CPU has neither AMX nor AVX512-BF16, so bf16 would be emulated (slower)",
    )


@pytest.mark.parametrize("native", [True, False])
def test_a_gpu_gets_bf16_when_it_supports_it(monkeypatch, cpu, native):
    cpu(True, True)  # the CPU's answer must not matter on a GPU
    monkeypatch.setattr(precision, "gpu_runs_bf16", lambda: (native, "Fake GPU"))
    chosen, why = choose_precision("gpu")
    assert chosen == ("bf16-mixed" if native else "32-true") and "Fake GPU" in why


def test_training_records_the_choice_and_says_why(tiny_cfg, cpu, caplog):
    from cvae_lightning.training.train import train

    cpu(False, False)
    tiny_cfg.trainer.max_epochs = 1
    tiny_cfg.callbacks.densities = None
    assert tiny_cfg.trainer.precision == "auto"  # the default
    with caplog.at_level("INFO"):
        train(tiny_cfg)
    assert "trainer.precision=auto chose 32-true: the CPU has neither" in caplog.text
    assert "precision: 32-true" in (Path(tiny_cfg.paths.output) / "config.yaml").read_text()
