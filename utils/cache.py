"""Arrays on disk, keyed by the exact input files and the parameters that built them.

Knows nothing of what the arrays mean. A key changes when any file is added, removed,
rewritten or touched, or when a parameter changes, so a stale cache is never read.

An entry is a folder of ``.npy`` files, one per array, so an array can be read whole or
memory-mapped (``load(..., mmap=True)``): then only the rows a batch touches are read,
and the pages can be dropped again by the operating system. ``build`` writes an entry
array by array, straight to disk. Entries appear atomically: a reader sees all of an
entry or none of it.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np


def cache_key(files: Sequence[Path], params: Mapping[str, object]) -> str:
    """A hex digest of ``params`` and of every file's path, size, inode and times.

    The change time (``st_ctime_ns``) moves whenever a file's content or metadata
    changes, even if its size and modification time were put back; a replaced file
    gets another inode.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(dict(params), sort_keys=True, default=str).encode())
    for path in files:
        stat = Path(path).stat()
        digest.update(os.fsencode(path))
        digest.update(
            f"\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_ino}\n".encode()
        )
    return digest.hexdigest()[:32]


def load(cache_dir: Path, key: str, mmap: bool = False) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key`` (memory-mapped, read-only, with ``mmap``), or None
    when there are none or an array is damaged."""
    entry = Path(cache_dir) / key
    try:
        files = sorted(entry.glob("*.npy"))
        if not files:
            return None
        return {
            path.stem: np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            for path in files
        }
    except (OSError, ValueError, EOFError):
        return None


class EntryBuilder:
    """Writes the arrays of one cache entry into its unfinished folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A new array on disk, memory-mapped for writing, to be filled in place."""
        return np.lib.format.open_memmap(
            self.folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape
        )

    def put(self, name: str, array: np.ndarray) -> None:
        """Store a finished array."""
        np.save(self.folder / f"{name}.npy", np.asarray(array), allow_pickle=False)


@contextlib.contextmanager
def build(cache_dir: Path, key: str) -> Iterator[EntryBuilder]:
    """Write an entry under ``key``; it appears only when the block ends without error.

    If another process finished the same entry first, that one is kept.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f"{key}.", suffix=".tmp"))
    try:
        yield EntryBuilder(folder)
        target = cache_dir / key
        shutil.rmtree(target, ignore_errors=True)  # a damaged entry, or one being replaced
        try:
            os.rename(folder, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def save(cache_dir: Path, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Store ``arrays`` under ``key`` atomically; return the entry's folder."""
    with build(cache_dir, key) as entry:
        for name, array in arrays.items():
            entry.put(name, array)
    return Path(cache_dir) / key
