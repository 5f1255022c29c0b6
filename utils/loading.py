"""Turn a data folder into arrays: files from `dataset`, pixels from `images`, via `cache`."""

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils import cache, dataset, images, paths

# Bump when a change to decoding or resizing makes old cached arrays wrong.
LOADER_VERSION = 1


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
        and len(X) == len(kept) == len(stored["original_sizes"])
        and len(stored["skipped_paths"]) == len(stored["skipped_reasons"])
        and len(kept) + len(stored["skipped_paths"]) == count
        and bool(np.all((kept >= 0) & (kept < count)))
    )


def load_split(
    files: dataset.SplitFiles,
    image_size: int,
    resize_mode: str = "squash",
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[SplitArrays, list[images.Skipped]]:
    """Load one split, from the cache when the same files were loaded the same way before.

    The cache only saves time: an entry that does not fit these files is rebuilt, and a
    cache folder that cannot be written is passed over with a warning.
    """
    params = {"image_size": image_size, "resize_mode": resize_mode, "version": LOADER_VERSION}
    key = cache.cache_key(files.paths, params)
    stored = cache.load(paths.cache_dir(), key) if use_cache else None
    if stored is not None and not _fits(stored, len(files.paths), image_size):
        stored = None
    if stored is None:
        loaded = images.load_images(files.paths, image_size, resize_mode, progress=progress)
        stored = {
            "X": loaded.X,
            "kept": loaded.kept,
            "original_sizes": loaded.original_sizes,
            "skipped_paths": np.array([str(s.path) for s in loaded.skipped], dtype=str),
            "skipped_reasons": np.array([s.reason for s in loaded.skipped], dtype=str),
        }
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
        X=stored["X"],
        y=files.labels[kept],
        paths=[files.paths[i] for i in kept],
        original_sizes=stored["original_sizes"],
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
) -> LoadedDataset:
    """Load both splits of ``files`` (from ``dataset.collect_files``) as uint8 arrays."""
    start = time.perf_counter()
    train, train_skipped = load_split(files.train, image_size, resize_mode, use_cache, progress)
    val, val_skipped = load_split(files.val, image_size, resize_mode, use_cache, progress)
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
