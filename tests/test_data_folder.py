"""data=folder: any folder of images, with or without classes, splits and bad files."""

import numpy as np
import pytest
import torch
from PIL import Image

from cvae_lightning.data import load_split, make_source
from cvae_lightning.errors import DatasetError

from conftest import class_folder, write_png


def split(path, train=True, size=8, channels="auto", cache=None, **kw):
    return load_split(make_source("folder", path=path, **kw), train, size, channels, cache)


def test_class_subfolders_become_sorted_labels_and_a_held_out_share(tmp_path):
    class_folder(tmp_path / "d", classes=("dog", "cat"), per_class=10)
    train, test = split(tmp_path / "d"), split(tmp_path / "d", train=False)
    assert train.classes == test.classes == ["cat", "dog"]  # ImageFolder's order
    assert len(test.images) == 2 and sorted(test.labels.tolist()) == [0, 1]  # 10% of each
    assert len(train.images) == 18 and train.labels.bincount().tolist() == [9, 9]
    assert train.images.shape == (18, 1, 8, 8) and train.images.dtype == torch.uint8


def test_the_held_out_share_depends_only_on_the_file_names(tmp_path):
    class_folder(tmp_path / "d", per_class=30)
    first = split(tmp_path / "d", train=False).images
    write_png(tmp_path / "d" / "cat" / "zz_new.png", 99)  # another file elsewhere
    again = split(tmp_path / "d", train=False, val_fraction=0.1).images
    assert torch.equal(first, again[: len(first)]) or len(again) == len(first) + 1


def test_train_and_val_folders_are_the_splits(tmp_path):
    class_folder(tmp_path / "d" / "train", per_class=4)
    class_folder(tmp_path / "d" / "val", per_class=2)
    assert len(split(tmp_path / "d").images) == 8
    assert split(tmp_path / "d", train=False).labels.tolist() == [0, 0, 1, 1]


def test_a_flat_folder_is_unlabelled_and_nested_folders_belong_to_their_class(tmp_path):
    for i in range(10):
        write_png(tmp_path / "flat" / f"{i}.png", 10 * i)
    flat = split(tmp_path / "flat")
    assert flat.classes == [] and len(flat.images) == 9
    write_png(tmp_path / "n" / "a" / "deep" / "deeper" / "x.png", 1)
    write_png(tmp_path / "n" / "a" / "y.png", 2)
    write_png(tmp_path / "n" / "b" / "z.png", 3)
    write_png(tmp_path / "n" / "b" / "w.png", 4)
    nested = make_source("folder", path=tmp_path / "n")
    assert nested.classes == ["a", "b"]
    assert sorted(nested.train.files + nested.test.files)[0] == "a/deep/deeper/x.png"


def test_images_are_ordered_by_file_name_across_class_folders(tmp_path):
    for i in range(6):
        write_png(tmp_path / "d" / "train" / str(i % 2) / f"{i:05d}.png", 40 * i)
        write_png(tmp_path / "d" / "test" / str(i % 2) / f"{i:05d}.png", 40 * i)
    s = split(tmp_path / "d", train=False)
    assert s.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert s.images[:, 0, 0, 0].tolist() == [0, 40, 80, 120, 160, 200]


def test_broken_empty_and_text_files(tmp_path, caplog):
    class_folder(tmp_path / "d", per_class=5)
    (tmp_path / "d" / "cat" / "empty.png").write_bytes(b"")
    good = (tmp_path / "d" / "dog" / "img1000.png").read_bytes()
    (tmp_path / "d" / "dog" / "broken.jpg").write_bytes(good[:40])
    (tmp_path / "d" / "cat" / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING"):
        train = split(tmp_path / "d", cache=tmp_path / "cache", val_fraction=0.01)
        test = split(tmp_path / "d", train=False, cache=tmp_path / "cache", val_fraction=0.01)
    assert train.skipped + test.skipped == 2 and len(train.images) + len(test.images) == 10
    listed = "".join(p.read_text() for p in (tmp_path / "cache").glob("*/skipped.txt"))
    assert "empty.png" in listed and "broken.jpg" in listed and "notes.txt" not in listed
    assert "unreadable image file" in caplog.text


def test_colour_is_auto_detected_and_can_be_converted(tmp_path):
    class_folder(tmp_path / "c", per_class=3, colour=True)
    s = split(tmp_path / "c", cache=tmp_path / "cache")
    assert s.channels == 3 and s.images[0, 0, 0, 0] != s.images[0, 2, 0, 0]
    assert split(tmp_path / "c", channels=1).channels == 1
    class_folder(tmp_path / "g", per_class=3)
    assert split(tmp_path / "g").channels == 1
    assert split(tmp_path / "g", channels=3).channels == 3


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d: None, "data.path=.* does not exist or is not a folder"),
        (lambda d: (d.mkdir(), (d / "a.txt").write_text("x")), "holds no image files"),
    ],
)
def test_bad_paths_name_the_key_and_the_fix(tmp_path, setup, message):
    setup(tmp_path / "d")
    with pytest.raises(DatasetError, match=message):
        make_source("folder", path=tmp_path / "d")


def test_a_folder_of_only_unreadable_images_is_refused(tmp_path):
    for i in range(3):
        (tmp_path / "d" / "x").mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / "x" / f"{i}.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="none of the 2 image files .* could be read"):
        split(tmp_path / "d", cache=tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]  # nothing half-written


def test_mode_mix_in_one_folder(tmp_path):
    d = tmp_path / "mix" / "a"
    d.mkdir(parents=True)
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 1] = 200
    Image.fromarray(rgb).save(d / "rgb.jpg")
    Image.fromarray(rgb).convert("P").save(d / "pal.png")
    Image.fromarray(np.dstack([rgb, np.full((16, 16), 255, np.uint8)]), "RGBA").save(d / "a.png")
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(d / "deep.png")
    Image.fromarray(rgb[..., 1]).save(d / "grey.bmp")
    Image.fromarray(rgb).save(d / "w.webp")
    Image.fromarray(rgb).save(d / "t.tiff")
    s = split(tmp_path / "mix", size=8, val_fraction=0.2)
    t = split(tmp_path / "mix", train=False, size=8, val_fraction=0.2)
    assert s.channels == 3 and len(s.images) + len(t.images) == 7 and s.skipped == 0
