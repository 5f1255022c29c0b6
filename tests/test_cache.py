"""Cache keys follow the files and parameters; stored arrays round-trip without pickle."""

import errno
import os

import numpy as np
import pytest
from conftest import noise_image, write_jpeg

from utils import cache, paths


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
    assert path.name == "k1"
    assert sorted(p.name for p in path.iterdir()) == ["X.npy", "checksums.json", "names.npy"]
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
    assert cache.load(tmp_path, "damaged", verify=False) is None
    (tmp_path / "pickled").mkdir()
    np.save(tmp_path / "pickled" / "objects.npy", np.array([{"a": 1}], dtype=object))
    assert cache.load(tmp_path, "pickled", verify=False) is None


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


def test_an_array_built_in_place_has_its_blocks_reserved_or_says_the_disk_is_full(
    tmp_path, monkeypatch
):
    """Writing through a memory map to a full disk kills the process (SIGBUS); reserving
    the blocks first turns that into an OSError. Where posix_fallocate is refused or
    missing, zeros are written instead, after the array's header."""
    calls = []
    real = os.posix_fallocate
    monkeypatch.setattr(os, "posix_fallocate", lambda *args: calls.append(args) or real(*args))
    with cache.build(tmp_path / "cache", "k") as entry:
        entry.array("X", (3, 4), np.uint8)[:] = 7
    assert len(calls) == 1 and calls[0][1:] == (0, (tmp_path / "cache/k/X.npy").stat().st_size)

    def refused(*args):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", refused)
    with cache.build(tmp_path / "cache", "k2") as entry:
        X = entry.array("X", (3, 4), np.uint16)
        assert not X.any()
        X[:] = 9
        X.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "cache/k2/X.npy"), np.full((3, 4), 9))

    monkeypatch.delattr(os, "posix_fallocate")
    with cache.build(tmp_path / "cache", "k3") as entry:
        entry.array("X", (5,), np.uint8)[:] = 1
    np.testing.assert_array_equal(np.load(tmp_path / "cache/k3/X.npy"), np.ones(5))


def test_a_disk_too_full_for_an_array_raises_and_leaves_no_unfinished_entry(tmp_path, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with (
        pytest.raises(OSError, match="No space left"),
        cache.build(tmp_path / "cache", "k") as entry,
    ):
        entry.array("X", (3, 4), np.uint8)
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_entry_whose_pixels_changed_on_disk_is_found_by_its_checksums(tmp_path):
    """Zeroing X.npy in place keeps its shape and size, so only the checksum tells: the
    entry reads as missing, with a warning that names it, and a new build replaces it."""
    arrays = {"X": np.full((4, 2, 2, 3), 200, np.uint8), "kept": np.arange(4)}
    entry = cache.save(tmp_path, "k", arrays)
    assert sorted(p.name for p in entry.iterdir()) == ["X.npy", "checksums.json", "kept.npy"]
    assert cache.load(tmp_path, "k", mmap=True)["X"].min() == 200
    X = np.load(entry / "X.npy", mmap_mode="r+")
    X[:] = 0
    X.flush()
    del X
    with pytest.warns(UserWarning, match=r"damaged \(X.npy does not match its checksum\)"):
        assert cache.load(tmp_path, "k") is None
    assert cache.load(tmp_path, "k", verify=False)["X"].max() == 0  # what a run used to get
    cache.save(tmp_path, "k", arrays)
    assert cache.load(tmp_path, "k")["X"].min() == 200

    (entry / "checksums.json").unlink()
    with pytest.warns(UserWarning, match="no readable checksums.json"):
        assert cache.load(tmp_path, "k") is None


def test_an_entry_folder_gets_what_the_umask_gives(tmp_path):
    """#31: mkdtemp made the cache's entry folders 0700, unreadable to the other users of a
    shared cache."""
    path = cache.save(tmp_path / "cache", "k1", {"X": np.zeros((1, 2, 2, 3), dtype=np.uint8)})
    assert path.stat().st_mode & 0o777 == paths.FOLDER_MODE
