"""CIFAR-10 and CelebA from their own file layouts (written here, never downloaded), and the
MNIST-style gz files."""

import gzip
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10

from cvae_lightning.data import load_split, make_source
from cvae_lightning.errors import DatasetError
from cvae_lightning.paths import PROJECT_ROOT

from conftest import read_images


def both_splits(source, size, cache):
    return (load_split(source, train, size, "auto", cache) for train in (True, False))


def write_cifar(root, n_per_batch=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        blob = {"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                "labels": list(rng.integers(0, 10, n_per_batch))}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(blob))
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return root


def test_cifar10_reads_the_python_batches_in_colour(tmp_path):
    root = write_cifar(tmp_path)
    source = make_source("cifar10", root, verify=False)
    train, test = both_splits(source, 32, tmp_path / "cache")
    assert train.images.shape == (100, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    assert train.classes[3] == "cat"
    raw = pickle.loads((root / "cifar-10-batches-py" / "test_batch").read_bytes())
    assert torch.equal(test.images[0], torch.from_numpy(raw["data"][0].reshape(3, 32, 32)))
    assert load_split(source, True, 16, 1, None).images.shape == (100, 1, 16, 16)


def test_cifar10_missing_file_and_md5_name_the_file(tmp_path):
    root = write_cifar(tmp_path)
    with pytest.raises(DatasetError, match="batches.meta has the wrong md5.*data.verify=false"):
        make_source("cifar10", root)
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3 is missing: extract"):
        load_split(make_source("cifar10", root, verify=False), True, 32)
    with pytest.raises(DatasetError, match="cifar-10-batches-py does not exist"):
        make_source("cifar10", tmp_path / "elsewhere")


def write_celeba(root, n=12):
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    lines = []
    for i in range(1, n + 1):
        a = np.zeros((218, 178, 3), np.uint8)
        a[..., 0] = 10 * i
        Image.fromarray(a).save(folder / "img_align_celeba" / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {0 if i <= 8 else 1 if i <= 10 else 2}")
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celeba_reads_its_layout_unlabelled_and_centre_cropped(tmp_path):
    root = write_celeba(tmp_path)
    train, test = both_splits(make_source("celeba", root, verify=False), 64, tmp_path / "cache")
    assert train.images.shape == (8, 3, 64, 64) and len(test.images) == 2
    assert train.classes == [] and test.images[0, 0].float().mean() == pytest.approx(110, abs=3)


def test_celeba_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetError, match="img_align_celeba is missing: put CelebA"):
        make_source("celeba", tmp_path)
    root = write_celeba(tmp_path)
    with pytest.raises(DatasetError, match="list_eval_partition.txt has the wrong md5"):
        make_source("celeba", root)
    (root / "celeba" / "img_align_celeba" / "000002.jpg").unlink()
    s = load_split(make_source("celeba", root, verify=False), True, 16, "auto", tmp_path / "c")
    assert len(s.images) == 7 and s.skipped == 1


def test_mnist_cache_is_reused_and_rebuilt_per_size(tiny_mnist, tmp_path):
    cache = tmp_path / "cache"
    a, _ = read_images(tiny_mnist, "mnist", True, 16, cache, verify=False)
    assert (cache / "mnist-train-16px-1ch" / "images.u8").is_file()
    b, _ = read_images(tiny_mnist, "mnist", True, 16, cache, verify=False)
    assert torch.equal(a, b)
    c, _ = read_images(tiny_mnist, "mnist", True, 24, cache, verify=False)
    assert c.shape == (300, 1, 24, 24)


def test_missing_mnist_folder_names_the_folder(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nowhere' / 'MNIST' / 'raw'} does not"):
        read_images(tmp_path / "nowhere", "mnist", True, 16)


def test_truncated_gz_names_the_file(tiny_mnist):
    gz = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DatasetError, match=f"{gz} is corrupt or truncated"):
        read_images(tiny_mnist, "mnist", True, 16, verify=False)


def test_wrong_md5_names_the_file(tiny_mnist):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz has the wrong md5"):
        read_images(tiny_mnist, "mnist", True, 16, verify=True)


def test_unknown_dataset_is_refused():
    with pytest.raises(DatasetError, match="data.name='cifar'.*cifar10"):
        make_source("cifar")


def test_real_mnist_files_pass_the_md5_check(cache_dir):
    data = PROJECT_ROOT / "data"
    images, labels = read_images(data, "mnist", False, 8, cache_dir)
    assert images.shape == (10_000, 1, 8, 8) and labels[:3].tolist() == [7, 2, 1]
    with gzip.open(data / "MNIST/raw/t10k-labels-idx1-ubyte.gz") as f:
        assert f.read(4) == b"\x00\x00\x08\x01"  # the idx magic of a label file


def test_fashion_mnist_is_the_same_code_on_another_folder(cache_dir):
    from conftest import compose_config

    cfg = compose_config("data=fashion_mnist")
    assert cfg.data.name == "fashion_mnist" and cfg.data.image_size == 64
    images, labels = read_images(PROJECT_ROOT / "data", "fashion_mnist", False, 8, cache_dir)
    assert images.shape == (10_000, 1, 8, 8) and labels[:3].tolist() == [9, 2, 1]


def test_a_home_relative_root_and_cache_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_cifar(tmp_path / "datasets")
    source = make_source("cifar10", "~/datasets", verify=False)
    split = load_split(source, False, 32, "auto", "~/datasets/cache")
    assert split.where.is_relative_to(tmp_path / "datasets" / "cache") and len(split.images) == 20
