"""Project root and default folders, so JupyterLab and papermill agree on every path.

JupyterLab starts kernels in ``notebooks/`` while papermill may be started anywhere, so
nothing here depends on the working directory.
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _read_umask() -> int:
    """The process's umask. ``os.umask`` can only read it by setting it, so this runs once,
    at import, before any thread could create a file meanwhile."""
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


UMASK = _read_umask()
# What the umask gives a new folder: what mkdir would have made (mkdtemp makes 0700).
FOLDER_MODE = 0o777 & ~UMASK
# ... and a new file: what open would have made (mkstemp makes 0600).
FILE_MODE = 0o666 & ~UMASK


def data_root() -> Path:
    """Folder for datasets and caches: ``$CNN_ARTISTS_DATA`` or ``<project>/data``."""
    return Path(os.environ.get("CNN_ARTISTS_DATA", PROJECT_ROOT / "data"))


def out_root() -> Path:
    """Folder that holds one sub-folder per run: ``$CNN_ARTISTS_OUT`` or ``<project>/out``."""
    return Path(os.environ.get("CNN_ARTISTS_OUT", PROJECT_ROOT / "out"))


def sample_data_dir() -> Path:
    """Where the built-in synthetic paintings are written on first use."""
    return data_root() / "sample"


def cache_dir() -> Path:
    """Where loaded image arrays are cached between runs."""
    return data_root() / "cache"


def resolve(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute against the project root; ``~`` is expanded.

    Links are not followed, whether ``path`` is relative or absolute: the path names the link
    itself, so a caller can see a link (or one that leads nowhere) for what it is.
    """
    return PROJECT_ROOT / Path(path).expanduser()


def display(path: str | os.PathLike[str]) -> str:
    """Show ``path`` relative to the project root when it lies inside it, else in full. A link
    in a loop, which cannot be resolved, is shown as given."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except (ValueError, RuntimeError, OSError):  # RuntimeError: a symlink loop (Python 3.11)
        return str(path)
