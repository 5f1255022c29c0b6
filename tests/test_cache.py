"""Cache keys follow the files and parameters; stored arrays round-trip without pickle."""

import os

import numpy as np
from conftest import noise_image, write_jpeg

from utils import cache


def test_key_changes_with_files_and_parameters(tmp_path):
    first = write_jpeg(tmp_path / "a.jpg", noise_image(1))
    second = write_jpeg(tmp_path / "b.jpg", noise_image(2))
    key = cache.cache_key([first, second], {"image_size": 64})
    assert key == cache.cache_key([first, second], {"image_size": 64})
    assert key != cache.cache_key([first, second], {"image_size": 32})
    assert key != cache.cache_key([first], {"image_size": 64})
    assert key != cache.cache_key([second, first], {"image_size": 64})
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert key != cache.cache_key([first, second], {"image_size": 64})


def test_round_trip(tmp_path):
    arrays = {"X": np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3), "names": np.array(["a", "b"])}
    path = cache.save(tmp_path / "cache", "k1", arrays)
    assert path.name == "k1" and sorted(p.name for p in path.iterdir()) == ["X.npy", "names.npy"]
    for mmap in (False, True):
        loaded = cache.load(tmp_path / "cache", "k1", mmap=mmap)
        assert loaded["X"].dtype == np.uint8
        assert isinstance(loaded["X"], np.memmap) == mmap
        np.testing.assert_array_equal(loaded["X"], arrays["X"])
        assert loaded["names"].tolist() == ["a", "b"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["k1"]


def test_an_entry_built_in_place_appears_only_when_complete(tmp_path):
    with cache.build(tmp_path, "k2") as entry:
        X = entry.array("X", (3, 2, 2, 3), np.uint8)
        X[:] = 7
        X.flush()
        entry.put("kept", np.arange(3))
        assert cache.load(tmp_path, "k2") is None  # not there until the block ends
    assert cache.load(tmp_path, "k2", mmap=True)["X"].sum() == 7 * 36
    try:
        with cache.build(tmp_path, "k3") as entry:
            entry.put("kept", np.arange(3))
            raise RuntimeError("the loader failed half-way")
    except RuntimeError:
        pass
    assert cache.load(tmp_path, "k3") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k2"]


def test_missing_damaged_or_pickled_entries_read_as_none(tmp_path):
    assert cache.load(tmp_path, "absent") is None
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "X.npy").write_bytes(b"\x93NUMPY not really an array")
    assert cache.load(tmp_path, "damaged") is None
    (tmp_path / "pickled").mkdir()
    np.save(tmp_path / "pickled" / "objects.npy", np.array([{"a": 1}], dtype=object))
    assert cache.load(tmp_path, "pickled") is None


def test_key_changes_when_content_changes_but_size_and_mtime_do_not(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg", noise_image(1))
    key = cache.cache_key([path], {})
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert cache.cache_key([path], {}) != key
