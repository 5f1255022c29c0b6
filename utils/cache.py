"""Arrays on disk, keyed by the exact input files and the parameters that built them.

Knows nothing of what the arrays mean. A key changes when any file is added, removed,
rewritten or touched, or when a parameter changes, so a stale cache is never read.
"""

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
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


def load(cache_dir: Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or None when there are none or the file is damaged."""
    path = Path(cache_dir) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def save(cache_dir: Path, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Store ``arrays`` under ``key`` atomically: readers see the whole file or none."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{key}.npz"
    handle, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
