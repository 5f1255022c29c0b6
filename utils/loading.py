"""Turn a data folder into arrays: files from `dataset`, pixels from `images`, via `cache`.

Two ways to hold the pixels (``data_mode``): ``memory`` reads them into RAM; ``disk``
decodes every painting once into the cache folder and memory-maps it, so training reads
only the rows of each batch and needs memory for the batch, not for the data set. Both
give the same arrays, row for row, so a run gives the same numbers either way.
"""

import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils import cache, dataset, images, paths
from utils.choices import DATA_MODES

# Bump when a change to decoding, resizing or the cache's format makes old entries wrong.
LOADER_VERSION = 4  # 3: PNG and WebP turned upright by EXIF; 4: entries carry checksums
# auto keeps the arrays on disk when they would take more than this share of free memory.
MEMORY_SHARE = 1 / 3


class NoRoomError(RuntimeError):
    """The arrays fit neither in the cache's free disk space nor in memory."""


@dataclass(frozen=True)
class SplitArrays:
    """One split as arrays: ``X`` uint8 images, ``y`` integer labels, and their source files."""

    X: np.ndarray
    y: np.ndarray
    paths: list[Path]
    original_sizes: np.ndarray


@dataclass(frozen=True)
class LoadedDataset:
    """Both splits, the class list fixed from the training split, and the skipped files."""

    class_names: list[str]
    train: SplitArrays
    val: SplitArrays
    skipped: list[images.Skipped]
    layout: dataset.Layout
    seconds: float

    @property
    def memory_mapped(self) -> bool:
        """True when the images are read from the disk cache, not held in memory."""
        return isinstance(self.train.X, np.memmap)


def _fits(stored: dict[str, np.ndarray], count: int, image_size: int) -> bool:
    """True when cached arrays have the keys, dtypes and shapes a split of ``count`` files needs."""
    names = ("X", "kept", "original_sizes", "skipped_paths", "skipped_reasons")
    if any(name not in stored for name in names):
        return False
    X, kept = stored["X"], stored["kept"]
    return (
        X.dtype == np.uint8
        and X.shape[1:] == (image_size, image_size, 3)
        and kept.dtype.kind == "i"
        and len(kept) <= len(X) <= count
        and len(kept) == len(stored["original_sizes"])
        and len(stored["skipped_paths"]) == len(stored["skipped_reasons"])
        and len(kept) + len(stored["skipped_paths"]) == count
        and bool(np.all((kept >= 0) & (kept < count)))
    )


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``), 0 if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0


def fits_in_memory(needed: int, available: int | None = None) -> bool:
    """Whether ``needed`` bytes are at most ``MEMORY_SHARE`` of the ``available`` memory
    (``available_memory()``; when that is unknown, they are taken to fit)."""
    available = available_memory() if available is None else available
    return not available or needed <= MEMORY_SHARE * available


def _in_units(size: int) -> str:
    """A size in bytes as megabytes or gigabytes, for messages."""
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def keeps_in_memory(
    data_mode: str, files: dataset.DatasetFiles, image_size: int, available: int | None = None
) -> bool:
    """Whether ``data_mode`` holds the arrays in memory: ``auto`` does unless they would take
    more than ``MEMORY_SHARE`` of the ``available`` memory (``available_memory()``)."""
    if data_mode not in DATA_MODES:
        raise ValueError(f"Unknown data_mode {data_mode!r}; choose one of: {', '.join(DATA_MODES)}")
    if data_mode != "auto":
        return data_mode == "memory"
    needed = (len(files.train.paths) + len(files.val.paths)) * image_size * image_size * 3
    return fits_in_memory(needed, available)


def _decode_to_disk(
    files: dataset.SplitFiles, key: str, image_size: int, resize_mode: str, progress: bool
) -> dict[str, np.ndarray]:
    """Decode ``files`` straight into a new cache entry and return it, memory-mapped."""
    count = len(files.paths)
    with cache.build(paths.cache_dir(), key) as entry:
        X = entry.array("X", (count, image_size, image_size, 3), np.uint8)
        loaded = images.load_images(files.paths, image_size, resize_mode, progress=progress, out=X)
        X.flush()
        del X
        for name, array in _index_arrays(loaded).items():
            entry.put(name, array)
    stored = cache.load(paths.cache_dir(), key, mmap=True, verify=False)  # just written
    if stored is None:
        raise OSError(f"the cache entry {key} could not be read back")
    return stored


def _free_space(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (or its nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def _index_arrays(loaded: images.LoadedImages) -> dict[str, np.ndarray]:
    """What a cache entry keeps besides ``X``: which files loaded, their sizes, the skipped."""
    return {
        "kept": loaded.kept,
        "original_sizes": loaded.original_sizes,
        "skipped_paths": np.array([str(s.path) for s in loaded.skipped], dtype=str),
        "skipped_reasons": np.array([s.reason for s in loaded.skipped], dtype=str),
    }


def load_split(
    files: dataset.SplitFiles,
    image_size: int,
    resize_mode: str = "squash",
    use_cache: bool = True,
    progress: bool = False,
    in_memory: bool = True,
) -> tuple[SplitArrays, list[images.Skipped]]:
    """Load one split, from the cache when the same files were loaded the same way before.

    With ``in_memory`` False the split's ``X`` is memory-mapped from the cache (decoded
    into it first if needed), so it takes no memory of its own. The cache otherwise only
    saves time: an entry that does not fit these files is rebuilt, and a cache folder that
    cannot be written is passed over with a warning (then the arrays stay in memory).
    """
    params = {"image_size": image_size, "resize_mode": resize_mode, "version": LOADER_VERSION}
    key = cache.cache_key(files.paths, params)
    use_cache = use_cache or not in_memory
    stored = cache.load(paths.cache_dir(), key, mmap=not in_memory) if use_cache else None
    if stored is not None and not _fits(stored, len(files.paths), image_size):
        stored = None
    if stored is None and not in_memory:
        try:
            stored = _decode_to_disk(files, key, image_size, resize_mode, progress)
        except OSError as error:
            needed = len(files.paths) * image_size * image_size * 3
            reason = error.strerror or str(error)
            if not fits_in_memory(needed):
                raise NoRoomError(
                    f"The images need {_in_units(needed)} of free space for their cache in "
                    f"{paths.display(paths.cache_dir())} ({reason}; "
                    f"{_in_units(_free_space(paths.cache_dir()))} free), and they do not fit "
                    "in memory either. Free that much space, or point CNN_ARTISTS_DATA at a "
                    "disk with room."
                ) from None
            warnings.warn(
                f"Could not write the image cache in {paths.display(paths.cache_dir())} "
                f"({reason}); the images are held in memory instead.",
                stacklevel=2,
            )
            use_cache = False  # the same disk: a second try would only warn again
    if stored is None:
        loaded = images.load_images(files.paths, image_size, resize_mode, progress=progress)
        stored = {"X": loaded.X} | _index_arrays(loaded)
        if use_cache:
            try:
                cache.save(paths.cache_dir(), key, stored)
            except OSError as error:
                warnings.warn(
                    f"Could not write the image cache in {paths.cache_dir()} ({error}); "
                    "loading goes on without it.",
                    stacklevel=2,
                )
    kept = stored["kept"]
    split = SplitArrays(
        X=stored["X"][: len(kept)],
        y=files.labels[kept],
        paths=[files.paths[i] for i in kept],
        original_sizes=np.asarray(stored["original_sizes"]),
    )
    skipped = [
        images.Skipped(Path(path), str(reason))
        for path, reason in zip(stored["skipped_paths"], stored["skipped_reasons"], strict=True)
    ]
    return split, skipped


def load_files(
    files: dataset.DatasetFiles,
    image_size: int,
    resize_mode: str = "squash",
    use_cache: bool = True,
    progress: bool = False,
    in_memory: bool = True,
) -> LoadedDataset:
    """Load both splits of ``files`` (from ``dataset.collect_files``) as uint8 arrays,
    in memory or memory-mapped from the cache (``in_memory`` False)."""
    start = time.perf_counter()
    options = (image_size, resize_mode, use_cache, progress, in_memory)
    train, train_skipped = load_split(files.train, *options)
    val, val_skipped = load_split(files.val, *options)
    if len(train.y) == 0:
        raise dataset.DatasetError(f"No readable training images in {files.layout.train_dir}.")
    listed = np.bincount(files.train.labels, minlength=len(files.class_names))
    loaded = np.bincount(train.y, minlength=len(files.class_names))
    unlearnable = [
        name for name, n, m in zip(files.class_names, listed, loaded, strict=True) if n and not m
    ]
    if unlearnable:
        warnings.warn(
            f"None of the training images of {', '.join(unlearnable)} could be read (see the "
            "skipped files): the model cannot learn these artists.",
            stacklevel=2,
        )
    return LoadedDataset(
        files.class_names,
        train,
        val,
        train_skipped + val_skipped,
        files.layout,
        time.perf_counter() - start,
    )


def load_dataset(
    data_dir: Path,
    image_size: int,
    resize_mode: str = "squash",
    validation_split: float = 0.2,
    seed: int = 42,
    use_cache: bool = True,
    progress: bool = False,
) -> LoadedDataset:
    """Load the training and validation splits of ``data_dir`` as uint8 arrays."""
    files = dataset.collect_files(Path(data_dir), validation_split, seed)
    return load_files(files, image_size, resize_mode, use_cache, progress)


def size_statistics(original_sizes: np.ndarray) -> str:
    """Min, median and max of the original heights, widths and aspect ratios, as a table."""
    heights, widths = original_sizes[:, 0], original_sizes[:, 1]
    aspect = widths / heights
    rows = ["              min   median      max"]
    for name, values, fmt in (
        ("height px", heights, ".0f"),
        ("width px", widths, ".0f"),
        ("width/height", aspect, ".2f"),
    ):
        low, mid, high = np.min(values), np.median(values), np.max(values)
        rows.append(f"{name:<12}{low:>6{fmt}}{mid:>9{fmt}}{high:>9{fmt}}")
    return "\n".join(rows)
