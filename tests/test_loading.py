"""From a data folder to uint8 arrays, through the cache."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import write_jpeg

from utils import cache, dataset, images, loading


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_DATA", str(tmp_path / "data-root"))


def test_load_dataset_gives_uint8_arrays_and_integer_labels(kaggle_dataset):
    data = loading.load_dataset(kaggle_dataset, 16)
    assert data.class_names == ["Degas", "Monet", "Renoir"]
    assert data.train.X.shape == (12, 16, 16, 3) and data.train.X.dtype == np.uint8
    assert data.val.X.shape == (6, 16, 16, 3)
    assert data.train.y.dtype == np.int64
    assert data.train.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert data.train.original_sizes.tolist() == [[48, 64]] * 12
    assert data.skipped == []


def test_unreadable_files_are_skipped_and_labels_stay_aligned(kaggle_dataset):
    bad = kaggle_dataset / "training" / "training" / "Monet" / "001.jpg"
    bad.write_bytes(b"")
    data = loading.load_dataset(kaggle_dataset, 8)
    assert [item.path for item in data.skipped] == [bad]
    assert data.train.X.shape[0] == 11
    assert bad not in data.train.paths
    assert data.train.y.tolist() == [0] * 4 + [1] * 3 + [2] * 4
    assert all(
        p.parent.name == data.class_names[y]
        for p, y in zip(data.train.paths, data.train.y, strict=True)
    )


def test_second_load_comes_from_the_cache(kaggle_dataset, monkeypatch):
    first = loading.load_dataset(kaggle_dataset, 8)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded again although the cache was valid")

    monkeypatch.setattr(images, "load_images", refuse)
    second = loading.load_dataset(kaggle_dataset, 8)
    np.testing.assert_array_equal(first.train.X, second.train.X)
    assert second.train.paths == first.train.paths


def test_changed_file_invalidates_the_cache(kaggle_dataset):
    first = loading.load_dataset(kaggle_dataset, 8)
    changed = kaggle_dataset / "validation" / "validation" / "Degas" / "000.jpg"
    write_jpeg(changed, np.zeros((20, 20, 3), dtype=np.uint8))
    second = loading.load_dataset(kaggle_dataset, 8)
    assert second.val.X[0].max() < 10 < first.val.X[0].max()


def test_no_readable_training_image_is_an_error(tmp_path):
    for split in ("training", "validation"):
        for artist in ("Monet", "Degas"):
            folder = tmp_path / split / split / artist
            folder.mkdir(parents=True)
            (folder / "broken.jpg").write_bytes(b"broken")
    with pytest.raises(dataset.DatasetError, match="No readable training images"):
        loading.load_dataset(tmp_path, 8)


def test_size_statistics_table():
    table = loading.size_statistics(np.array([[100, 200], [300, 150], [200, 200]]))
    rows = {line[:12].strip(): line[12:].split() for line in table.splitlines()[1:]}
    assert rows["height px"] == ["100", "200", "300"]
    assert rows["width px"] == ["150", "200", "200"]
    assert rows["width/height"] == ["0.50", "1.00", "2.00"]


def test_all_real_paintings_load(subset_dir):
    data = loading.load_dataset(subset_dir, 32, use_cache=False)
    assert data.skipped == []
    assert len(data.train.y) + len(data.val.y) == 1230
    assert data.train.X.dtype == np.uint8


def test_a_cache_that_does_not_fit_is_rebuilt(kaggle_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_DATA", str(tmp_path / "data"))
    first = loading.load_dataset(kaggle_dataset, 8)
    entries = sorted(p for p in (tmp_path / "data" / "cache").iterdir() if p.is_dir())
    assert len(entries) == 2
    for entry in entries:
        np.save(entry / "kept.npy", np.load(entry / "kept.npy") + 1000)
        (entry / "original_sizes.npy").unlink()
        checksums = {p.name: cache.file_checksum(p) for p in entry.glob("*.npy")}
        (entry / cache.CHECKSUMS).write_text(json.dumps(checksums))  # whole, but wrong
    again = loading.load_dataset(kaggle_dataset, 8)
    np.testing.assert_array_equal(again.train.X, first.train.X)
    np.testing.assert_array_equal(again.val.y, first.val.y)


@pytest.mark.parametrize("unreadable", [False, True])
def test_disk_mode_memory_maps_the_same_arrays(kaggle_dataset, tmp_path, monkeypatch, unreadable):
    monkeypatch.setenv("CNN_ARTISTS_DATA", str(tmp_path / "data"))
    if unreadable:  # the first file of an artist: every later row moves up in place
        first_file = sorted((kaggle_dataset / "training" / "training" / "Degas").iterdir())[0]
        first_file.write_bytes(b"not an image")
    files = dataset.collect_files(kaggle_dataset)
    in_memory = loading.load_files(files, 16, use_cache=False)
    on_disk = loading.load_files(files, 16, in_memory=False)
    assert isinstance(on_disk.train.X, np.memmap) and not isinstance(in_memory.train.X, np.memmap)
    for split in ("train", "val"):
        mine, theirs = getattr(on_disk, split), getattr(in_memory, split)
        np.testing.assert_array_equal(mine.X, theirs.X)
        np.testing.assert_array_equal(mine.y, theirs.y)
        assert mine.paths == theirs.paths
    assert on_disk.skipped == in_memory.skipped and len(on_disk.skipped) == unreadable
    again = loading.load_files(files, 16, in_memory=False)  # now read from the cache
    np.testing.assert_array_equal(again.train.X, in_memory.train.X)


def test_auto_keeps_small_data_in_memory_and_large_data_on_disk(kaggle_dataset):
    files = dataset.collect_files(kaggle_dataset)
    count = len(files.train.paths) + len(files.val.paths)
    needed = count * 64 * 64 * 3
    assert loading.keeps_in_memory("auto", files, 64, available=3 * needed)
    assert not loading.keeps_in_memory("auto", files, 64, available=3 * needed - 1)
    assert loading.keeps_in_memory("memory", files, 64, available=1)
    assert not loading.keeps_in_memory("disk", files, 64, available=10**12)
    with pytest.raises(ValueError, match="auto, memory, disk"):
        loading.keeps_in_memory("stream", files, 64)


def test_an_unwritable_cache_folder_only_warns(kaggle_dataset, tmp_path, monkeypatch):
    data_root = tmp_path / "data"
    data_root.mkdir()
    (data_root / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("CNN_ARTISTS_DATA", str(data_root))
    with pytest.warns(UserWarning, match="Could not write the image cache"):
        data = loading.load_dataset(kaggle_dataset, 8)
    assert len(data.train.y) == 12


def test_an_artist_whose_images_are_all_unreadable_is_named(kaggle_dataset):
    for path in (kaggle_dataset / "training" / "training" / "Degas").iterdir():
        path.write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="Degas could be read"):
        data = loading.load_dataset(kaggle_dataset, 8)
    assert len(data.skipped) == 4


@pytest.fixture
def one_megabyte_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: a disk that runs full. Mounting needs root (or the right capability)."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or 'not root'}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


LOAD_TO_DISK = """
import sys
from utils import dataset, loading
if sys.argv[2] == "short of memory":
    loading.available_memory = lambda: 1
data = loading.load_files(dataset.collect_files(sys.argv[1]), 256, in_memory=False)
print("memory-mapped" if data.memory_mapped else "in memory")
"""


@pytest.mark.parametrize("memory", ["plenty of memory", "short of memory"])
def test_disk_mode_on_a_full_disk_keeps_the_images_in_memory_or_says_what_space_it_needs(
    kaggle_dataset, one_megabyte_disk, memory
):
    """The cache of 12 paintings at 256 px takes 2.4 MB; the disk has 1 MB. Filling a
    memory map there used to kill the process with SIGBUS, leaving a *.tmp folder."""
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_TO_DISK, str(kaggle_dataset), memory],
        capture_output=True,
        text=True,
        env=os.environ | {"CNN_ARTISTS_DATA": str(one_megabyte_disk)},
        timeout=300,
    )
    if memory == "plenty of memory":
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        assert loaded.stdout == "in memory\n"
        assert loaded.stderr.count("Could not write the image cache") == 2  # once per split
        assert "the images are held in memory instead" in loaded.stderr
    else:
        assert loaded.returncode == 1, loaded.stderr[-2000:]
        last_line = loaded.stderr.strip().splitlines()[-1]
        assert last_line.startswith("utils.loading.NoRoomError: The images need 2.4 MB of free")
        assert "(No space left on device; " in last_line and "do not fit in memory" in last_line
    assert list((one_megabyte_disk / "cache").glob("*")) == []


def test_a_cache_entry_damaged_on_disk_is_rebuilt_with_a_warning(kaggle_dataset):
    """Zeroed pixels of the same shape and size used to give a run on black paintings."""
    files = dataset.collect_files(kaggle_dataset)
    first = loading.load_files(files, 16, in_memory=False)
    cached = Path(first.train.X.filename)
    X = np.load(cached, mmap_mode="r+")
    X[:] = 0
    X.flush()
    del X, first
    with pytest.warns(UserWarning, match="are damaged .*X.npy does not match its checksum"):
        again = loading.load_files(files, 16, in_memory=False)
    assert again.train.X.max() > 0
    np.testing.assert_array_equal(
        again.train.X, loading.load_files(files, 16, use_cache=False).train.X
    )
