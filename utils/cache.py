"""Arrays on disk, keyed by the exact input files and the parameters that built them.

Knows nothing of what the arrays mean. A key changes when any file is added, removed,
rewritten or touched, or when a parameter changes, so a stale cache is never read.

An entry is a folder of ``.npy`` files, one per array, so an array can be read whole or
memory-mapped (``load(..., mmap=True)``): then only the rows a batch touches are read,
and the pages can be dropped again by the operating system. ``build`` writes an entry
array by array, straight to disk. Entries appear atomically: a reader sees all of an
entry or none of it. Each entry records a SHA-256 checksum of every array file
(``checksums.json``), checked when the entry is opened: pixels damaged on disk (a bad
block, a file overwritten in place) are found once per run, in one sequential read,
instead of being trained on.
"""

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from utils import paths


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


CHECKSUMS = "checksums.json"
READ_CHUNK = 16 * 2**20  # bytes hashed at a time


def file_checksum(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read sequentially in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def damage(entry: Path) -> str:
    """What is wrong with the entry's array files against its checksums, or "" if nothing."""
    try:
        recorded = json.loads((entry / CHECKSUMS).read_text())
    except (OSError, ValueError):
        return f"it has no readable {CHECKSUMS}"
    files = {path.name: path for path in entry.glob("*.npy")}
    if not isinstance(recorded, dict) or set(recorded) != set(files):
        return f"its files are not the ones {CHECKSUMS} lists"
    for name, path in sorted(files.items()):
        if file_checksum(path) != recorded[name]:
            return f"{name} does not match its checksum"
    return ""


def load(
    cache_dir: Path, key: str, mmap: bool = False, verify: bool = True
) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key`` (memory-mapped, read-only, with ``mmap``), or None
    when there are none or an array is damaged. With ``verify`` every file is checked
    against its checksum first; a damaged entry is named in a warning (the caller then
    builds it again)."""
    entry = Path(cache_dir) / key
    try:
        files = sorted(entry.glob("*.npy"))
        if not files:
            return None
        if verify and (problem := damage(entry)):
            warnings.warn(
                f"The cached arrays in {entry} are damaged ({problem}); they are built again.",
                stacklevel=2,
            )
            return None
        return {
            path.stem: np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            for path in files
        }
    except (OSError, ValueError, EOFError):
        return None


ZERO_CHUNK = 16 * 2**20  # bytes written at a time where blocks cannot be reserved otherwise


def reserve(path: Path, start: int = 0) -> None:
    """Allocate every block of the file at ``path`` on its disk, or raise ``OSError``
    (``ENOSPC`` when the disk is too full). Uses ``posix_fallocate``; where the system or
    the file system lacks it, writes zeros from byte ``start`` to the end instead (the
    file must hold zeros there), which allocates the blocks too."""
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(file.fileno(), 0, size)
                return
            except OSError as error:
                if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
        file.seek(start)
        zeros = bytes(min(ZERO_CHUNK, size))
        for offset in range(start, size, ZERO_CHUNK):
            file.write(zeros[: min(ZERO_CHUNK, size - offset)])
        file.flush()
        os.fsync(file.fileno())


class EntryBuilder:
    """Writes the arrays of one cache entry into its unfinished folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A new array on disk, memory-mapped for writing, to be filled in place.

        Its blocks are reserved first (``reserve``): writing through a memory map to a
        disk that runs full kills the process with SIGBUS, where reserving fails with an
        ``OSError`` the caller can handle.
        """
        path = self.folder / f"{name}.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        try:
            reserve(path, start=array.offset)
        except OSError:
            del array
            raise
        return array

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
    folder.chmod(paths.FOLDER_MODE)  # mkdtemp makes 0700; the umask decides
    try:
        yield EntryBuilder(folder)
        checksums = {path.name: file_checksum(path) for path in folder.glob("*.npy")}
        (folder / CHECKSUMS).write_text(json.dumps(checksums, indent=1, sort_keys=True))
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
