import pytest
import torch

from cvae_lightning.errors import DatasetError
from cvae_lightning.training.datamodule import ImageDataModule, TensorBatches

from conftest import class_folder, read_images


def make_dm(root, cache, **kw) -> ImageDataModule:
    args = dict(root=str(root), image_size=32, batch_size=64, verify=False, cache_dir=str(cache))
    dm = ImageDataModule(**(args | kw))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_batches_are_resized_scaled_shuffled_and_drop_last(tiny_mnist, tmp_path):
    dm = make_dm(tiny_mnist, tmp_path / "cache")
    loader = dm.train_dataloader()
    assert len(loader) == 300 // 64  # last partial batch dropped
    batches = list(loader)
    assert len(batches) == 4
    x, y = batches[0]
    # uint8 leaves the loader (a quarter of the bytes to copy); the module scales it.
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.uint8
    seen = torch.cat([b[1] for b in batches])
    assert len(seen) == 256 and not torch.equal(seen, torch.arange(256) % 10)  # shuffled
    # The next epoch draws another order.
    assert not torch.equal(next(iter(loader))[1], batches[0][1])


def test_limit_takes_the_first_images(tiny_mnist, tmp_path):
    dm = make_dm(tiny_mnist, tmp_path / "cache", limit=128)
    assert len(dm.train_data[0]) == 128 and len(dm.train_dataloader()) == 2
    full, _ = read_images(tiny_mnist, "mnist", True, 32, tmp_path / "cache", verify=False)
    assert torch.equal(dm.train_data[0], full[:128])


def test_validation_uses_the_test_split_in_order(tiny_mnist, tmp_path):
    dm = make_dm(tiny_mnist, tmp_path / "cache", val_batch_size=30)
    batches = list(dm.val_dataloader())
    assert [len(b[1]) for b in batches] == [30, 30, 30, 10]  # nothing dropped
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.arange(100) % 10)


def test_batches_resume_mid_epoch_exactly():
    images, labels = torch.arange(100).view(100, 1, 1, 1).to(torch.uint8), torch.arange(100)
    full = TensorBatches(images, labels, 10, shuffle=True, drop_last=True, seed=3)
    reference = [y for _, y in full] + [y for _, y in full]  # two epochs
    run = TensorBatches(images, labels, 10, shuffle=True, drop_last=True, seed=3)
    it = iter(run)
    first = [next(it)[1] for _ in range(4)]
    state = run.state_dict()
    resumed = TensorBatches(images, labels, 10, shuffle=True, drop_last=True, seed=3)
    resumed.load_state_dict(state)
    rest = [y for _, y in resumed] + [y for _, y in resumed]
    assert all(torch.equal(a, b) for a, b in zip(first + rest, reference, strict=True))


def test_ranks_see_disjoint_halves():
    images, labels = torch.zeros(100, 1, 1, 1, dtype=torch.uint8), torch.arange(100)
    parts = [
        torch.cat([y for _, y in TensorBatches(images, labels, 10, True, True, 0, r, 2)])
        for r in (0, 1)
    ]
    assert len(parts[0]) == len(parts[1]) == 50
    assert set(parts[0].tolist()).isdisjoint(parts[1].tolist())


def test_unknown_dataset_is_refused_before_any_data_is_read():
    dm = ImageDataModule(name="cifar")  # the source is found when the data is prepared
    with pytest.raises(DatasetError, match="data.name='cifar'.*fashion_mnist"):
        dm.prepare_data()


def test_a_folder_trains_from_the_cache_with_its_classes_and_colour(tmp_path):
    d = class_folder(tmp_path / "d", per_class=40, colour=True)
    dm = make_dm(None, tmp_path / "cache", name="folder", path=str(d), batch_size=16)
    assert dm.classes == ["cat", "dog"] and dm.channels == 3
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 32, 32) and set(y.tolist()) <= {0, 1}
