"""From a data folder to uint8 arrays, through the cache."""

import numpy as np
import pytest
from conftest import write_jpeg

from utils import dataset, images, loading


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
