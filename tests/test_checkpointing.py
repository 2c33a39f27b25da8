import pytest
import torch

from cvae_lightning.training.checkpointing import AtomicCheckpointIO


def test_a_crash_while_saving_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    def dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # e.g. the job killed mid-save

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_saves_and_loads_like_torch(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "sub" / "a.ckpt"
    io.save_checkpoint({"w": torch.arange(4)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(4))


def ddp_config(tiny_cfg, tmp_path):
    """The tiny run as 2 CPU processes (ddp_spawn, gloo): 4 steps per rank and epoch."""
    from conftest import TINY, compose_config

    cfg = compose_config(
        *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.strategy=ddp_spawn", "trainer.precision=32-true", "trainer.max_epochs=3",
        f"data.cache_dir={tiny_cfg.data.cache_dir}", "~callbacks.densities", "~callbacks.latent",
        "~callbacks.nan_guard", "~callbacks.save_on_interrupt",
    )  # fmt: skip
    cfg.paths.output = str(tmp_path / "run")
    cfg.trainer.enable_progress_bar = False
    return cfg


def notes(tmp_path) -> dict[str, list[str]]:
    return {p.stem: p.read_text().split("\n")[:-1] for p in sorted(tmp_path.glob("rank*.txt"))}


@pytest.mark.slow
def test_ddp_a_nan_on_one_rank_stops_every_rank_at_the_same_step(tiny_cfg, tmp_path):
    from cvae_lightning.errors import NonFiniteLossError
    from cvae_lightning.training.train import train

    from helpers.ddp_faults import NanOnOneRank, NotingGuard, deadline

    cfg = ddp_config(tiny_cfg, tmp_path)
    guard = NotingGuard(str(tmp_path), check_every_n_steps=2)
    with deadline(240), pytest.raises(NonFiniteLossError, match=r"at step 6 \(epoch 2\)"):
        train(cfg, extra_callbacks=[NanOnOneRank(rank=1, step=6), guard])
    # Rank 0's losses were finite; it stopped all the same, at the step rank 1 did.
    assert notes(tmp_path) == {"rank0": ["stopped 8"], "rank1": ["stopped 8"]}


@pytest.mark.slow
def test_ddp_ctrl_c_on_one_rank_saves_once_on_every_rank(tiny_cfg, tmp_path):
    from cvae_lightning.errors import Interrupted
    from cvae_lightning.training.train import train

    from helpers.ddp_faults import InterruptOnOneRank, deadline

    cfg = ddp_config(tiny_cfg, tmp_path)
    ckpts = tmp_path / "run" / "checkpoints"
    stop = InterruptOnOneRank(str(ckpts), str(tmp_path), rank=1, step=5, check_every_n_steps=2)
    with deadline(240), pytest.raises(Interrupted, match="epoch 2, step 8; saved .*last.ckpt"):
        train(cfg, extra_callbacks=[stop])
    # Asked at step 5 on rank 1; agreed at step 6, read at step 8 (the epoch's end) by both.
    assert notes(tmp_path) == {"rank0": ["saving 8"], "rank1": ["saving 8"]}
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 8
