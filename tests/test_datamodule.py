import gzip

import pytest
import torch

from cvae_lightning.datamodule import MNISTDataModule, TensorBatches
from cvae_lightning.datasets import (
    DatasetError,
    cache_path,
    load_resized,
    resize_images,
)
from cvae_lightning.runs import PROJECT_ROOT


def make_dm(root, cache, **kw) -> MNISTDataModule:
    args = dict(root=str(root), image_size=32, batch_size=64, verify=False, cache_dir=str(cache))
    dm = MNISTDataModule(**(args | kw))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_batches_are_resized_scaled_shuffled_and_drop_last(tiny_mnist, tmp_path):
    dm = make_dm(tiny_mnist, tmp_path / "cache")
    loader = dm.train_dataloader()
    assert len(loader) == 300 // 64  # last partial batch dropped
    batches = [dm.on_after_batch_transfer(b, 0) for b in loader]
    assert len(batches) == 4
    x, y = batches[0]
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    seen = torch.cat([b[1] for b in batches])
    assert len(seen) == 256 and not torch.equal(seen, torch.arange(256) % 10)  # shuffled
    # The next epoch draws another order.
    assert not torch.equal(next(iter(loader))[1], batches[0][1])


def test_limit_takes_the_first_images(tiny_mnist, tmp_path):
    dm = make_dm(tiny_mnist, tmp_path / "cache", limit=128)
    assert len(dm.train_data[0]) == 128 and len(dm.train_dataloader()) == 2
    full, _ = load_resized(tiny_mnist, "mnist", True, 32, tmp_path / "cache", verify=False)
    assert torch.equal(dm.train_data[0], full[:128])


def test_validation_uses_the_test_split_in_order(tiny_mnist, tmp_path):
    dm = make_dm(tiny_mnist, tmp_path / "cache", val_batch_size=30)
    batches = list(dm.val_dataloader())
    assert [len(b[1]) for b in batches] == [30, 30, 30, 10]  # nothing dropped
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.arange(100) % 10)


def test_resize_keeps_the_digit_centred():
    images = torch.zeros(1, 28, 28, dtype=torch.uint8)
    images[0, 10:18, 10:18] = 200
    out = resize_images(images, 64)
    assert out.shape == (1, 1, 64, 64) and out.dtype == torch.uint8
    ys, xs = torch.nonzero(out[0, 0] > 100, as_tuple=True)
    assert ys.float().mean().item() == pytest.approx(31.5, abs=0.5)
    assert xs.float().mean().item() == pytest.approx(31.5, abs=0.5)


def test_cache_is_reused_and_rebuilt_per_size(tiny_mnist, tmp_path):
    cache = tmp_path / "cache"
    a, _ = load_resized(tiny_mnist, "mnist", True, 16, cache, verify=False)
    assert cache_path(cache, "mnist", True, 16).is_file()
    # With the raw files gone, only the cache can answer.
    for f in (tiny_mnist / "MNIST" / "raw").iterdir():
        f.unlink()
    b, _ = load_resized(tiny_mnist, "mnist", True, 16, cache, verify=False)
    assert torch.equal(a, b)
    with pytest.raises(DatasetError, match="missing"):
        load_resized(tiny_mnist, "mnist", True, 24, cache, verify=False)


def test_corrupt_cache_is_refused_with_the_fix(tiny_mnist, tmp_path):
    cache = tmp_path / "cache"
    load_resized(tiny_mnist, "mnist", True, 16, cache, verify=False)
    path = cache_path(cache, "mnist", True, 16)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match=f"{path}.*corrupt.*delete"):
        load_resized(tiny_mnist, "mnist", True, 16, cache, verify=False)


def test_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nowhere' / 'MNIST' / 'raw'} does not"):
        load_resized(tmp_path / "nowhere", "mnist", True, 16)


def test_truncated_gz_names_the_file(tiny_mnist, tmp_path):
    gz = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DatasetError, match=f"{gz} is corrupt or truncated"):
        load_resized(tiny_mnist, "mnist", True, 16, verify=False)


def test_wrong_md5_names_the_file(tiny_mnist):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz has the wrong md5"):
        load_resized(tiny_mnist, "mnist", True, 16, verify=True)


def test_unknown_dataset_is_refused():
    with pytest.raises(DatasetError, match="data.name='cifar'.*fashion_mnist"):
        MNISTDataModule(name="cifar")


def test_real_mnist_files_pass_the_md5_check(cache_dir):
    data = PROJECT_ROOT / "data"
    images, labels = load_resized(data, "mnist", False, 8, cache_dir)
    assert images.shape == (10_000, 1, 8, 8) and labels[:3].tolist() == [7, 2, 1]
    with gzip.open(data / "MNIST/raw/t10k-labels-idx1-ubyte.gz") as f:
        assert f.read(4) == b"\x00\x00\x08\x01"  # the idx magic of a label file


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


def test_fashion_mnist_is_the_same_code_on_another_folder(cache_dir):
    from conftest import compose_config

    cfg = compose_config("data=fashion_mnist")
    assert cfg.data.name == "fashion_mnist" and cfg.data.image_size == 64
    images, labels = load_resized(PROJECT_ROOT / "data", "fashion_mnist", False, 8, cache_dir)
    assert images.shape == (10_000, 1, 8, 8) and labels[:3].tolist() == [9, 2, 1]
