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
    assert path.name == "k1.npz"
    loaded = cache.load(tmp_path / "cache", "k1")
    assert loaded["X"].dtype == np.uint8
    np.testing.assert_array_equal(loaded["X"], arrays["X"])
    assert loaded["names"].tolist() == ["a", "b"]
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_missing_damaged_or_pickled_entries_read_as_none(tmp_path):
    assert cache.load(tmp_path, "absent") is None
    (tmp_path / "damaged.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert cache.load(tmp_path, "damaged") is None
    np.savez(tmp_path / "pickled.npz", objects=np.array([{"a": 1}], dtype=object))
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
