"""The shared cache: built once, memory-mapped, rebuilt when the files change, atomic, and safe
when two runs build it at once."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cvae_lightning.data import load_split, make_source
from cvae_lightning.errors import DiskFullError
from cvae_lightning.paths import PROJECT_ROOT

from conftest import class_folder, write_png


def folder_split(path, cache, train=True):
    return load_split(make_source("folder", path=path), train, 8, "auto", cache)


def test_the_cache_is_reused_when_nothing_changed_and_rebuilt_when_files_change(tmp_path):
    d, cache = class_folder(tmp_path / "d", per_class=10), tmp_path / "cache"
    first = folder_split(d, cache)
    (folder,) = [p for p in cache.iterdir() if p.is_dir() and "-train-" in p.name]
    built = (folder / "info.json").stat().st_mtime_ns
    again = folder_split(d, cache)
    assert torch.equal(first.images, again.images)
    assert (folder / "info.json").stat().st_mtime_ns == built  # reused, not rebuilt
    write_png(d / "cat" / "img0999.png", 250)  # a file added
    added = folder_split(d, cache)
    assert len(added.images) == len(first.images) + 1
    write_png(d / "cat" / "img0999.png", 5, size=(12, 11))  # a file changed
    changed = folder_split(d, cache)
    assert changed.images[:, 0].float().mean() < added.images[:, 0].float().mean()
    (d / "cat" / "img0999.png").unlink()  # and removed
    assert torch.equal(folder_split(d, cache).images, first.images)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no leftovers


def test_training_reads_the_cache_memory_mapped(tmp_path):
    d = class_folder(tmp_path / "d", per_class=10)
    s = folder_split(d, tmp_path / "cache")
    maps = Path("/proc/self/maps").read_text()
    assert str(s.where / "images.u8") in maps  # the pages come from the file, not a copy
    assert s.images[3].sum() > 0  # and it reads like any tensor


def test_a_corrupt_cache_is_rebuilt(tmp_path, caplog):
    d, cache = class_folder(tmp_path / "d", per_class=10), tmp_path / "cache"
    first = folder_split(d, cache)
    expected, data = first.images.clone(), first.where / "images.u8"
    data.write_bytes(data.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        again = folder_split(d, cache)
    assert "unreadable" in caplog.text and "rebuilding" in caplog.text
    assert torch.equal(expected, again.images)


BUILD = """
import sys
from pathlib import Path
from cvae_lightning.data import load_split, make_source
s = load_split(make_source("folder", path=sys.argv[1]), True, 16, "auto", sys.argv[2])
print(len(s.images), int(s.images.sum()))
"""


@pytest.mark.slow
def test_two_processes_building_at_once_both_succeed(tmp_path):
    d = class_folder(tmp_path / "d", per_class=1500)  # enough to take the parallel path
    cache = tmp_path / "cache"
    env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", BUILD, str(d), str(cache)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert outs[0][0] == outs[1][0] and outs[0][0].split()[0] == "2700"
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1  # one cache, no leftovers


def test_a_full_disk_while_caching_names_the_cache_and_leaves_nothing(monkeypatch, tmp_path):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    source = make_source("mnist", PROJECT_ROOT / "data")
    with pytest.raises(DiskFullError, match="mnist-test-8px-1ch \\(No space left on device\\)"):
        load_split(source, False, 8, "auto", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_without_a_cache_dir_the_split_is_built_in_memory(tmp_path):
    d = class_folder(tmp_path / "d", per_class=10)
    s = folder_split(d, None)
    assert s.where is None and len(s.images) == 18
