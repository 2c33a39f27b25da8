from PIL import Image

from conftest import read_events


def test_grids_are_saved_per_epoch_and_combined_at_the_end(trained_run):
    _, _, out = trained_run
    images = out / "images"
    for epoch in (1, 2, 3):
        for kind in ("recon", "samples"):
            with Image.open(images / f"{kind}_epoch{epoch:03d}.png") as im:
                # 16 images of 16px in 2 rows: 8 columns.
                assert im.size == (8 * 16, 2 * 16)
    with Image.open(images / "final.png") as im:
        # reconstructions (2 rows), a blank row, samples (2 rows)
        assert im.size == (8 * 16, 5 * 16)
        blank = im.convert("L").crop((0, 2 * 16, 8 * 16, 3 * 16))
        assert blank.getextrema() == (0, 0)


def test_grids_are_in_the_tensorboard_event_file(trained_run):
    _, _, out = trained_run
    events = read_events(out)
    tags = events.Tags()["images"]
    for tag in ("images/reconstructions", "images/samples", "images/originals", "images/final"):
        assert tag in tags
    recon = events.Images("images/reconstructions")
    assert [e.step for e in recon] == [0, 1, 2]
    assert (recon[0].width, recon[0].height) == (8 * 16, 2 * 16)


def test_samples_use_the_same_z_every_epoch(tiny_cfg):
    """The per-epoch sample grid decodes one fixed, seeded z, so epochs compare."""
    import lightning as L
    import torch

    from cvae_lightning.training.callbacks import ImageGridLogger
    from cvae_lightning.training.train import train

    class Spy(L.Callback):
        zs: list = []

        def on_train_epoch_end(self, trainer, pl_module):
            (grids,) = [c for c in trainer.callbacks if isinstance(c, ImageGridLogger)]
            self.zs.append(grids.z.clone())

    tiny_cfg.callbacks.densities = None
    train(tiny_cfg, extra_callbacks=[Spy()])
    first, second = Spy.zs
    assert torch.equal(first, second)
    assert torch.equal(first, torch.randn(16, 8, generator=torch.Generator().manual_seed(0)))


def test_nan_loss_stops_the_run_and_names_the_last_good_checkpoint(tiny_cfg):
    import lightning as L
    import pytest
    import torch

    from cvae_lightning.errors import NonFiniteLossError
    from cvae_lightning.training.train import train

    class Poison(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 2:
                with torch.no_grad():
                    pl_module.model.decoder.linear.weight.fill_(float("nan"))

    tiny_cfg.callbacks.nan_guard.check_every_n_steps = 100  # caught at the epoch's last batch
    with pytest.raises(NonFiniteLossError, match=r"step 11 \(epoch 2\).*last\.ckpt") as err:
        train(tiny_cfg, extra_callbacks=[Poison()])
    last = str(err.value).split("last good checkpoint: ")[1].split(". ")[0]
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 0 and state["global_step"] == 8
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())
