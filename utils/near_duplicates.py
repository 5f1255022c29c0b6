"""Find near-duplicate paintings with perceptual hashes, within and across splits.

    python -m utils.near_duplicates DATA_DIR [--max-distance 6]

The same painting in training and validation inflates validation scores (the model has
seen it), so look before trusting a result. A perceptual hash (pHash) keeps the signs of
an image's lowest spatial frequencies; resized, recompressed or slightly recoloured
copies keep nearly the same 64 bits, and the number of differing bits (the Hamming
distance) measures how alike two images look.

The default threshold, 12 of 64 bits, was set on the real paintings: it finds the same
Matisse cropped differently in training and validation (distance 12) at the cost of a
few look-alikes, so treat every pair as a candidate to check by eye.
"""

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from utils import dataset, images, paths

DEFAULT_MAX_DISTANCE = 12
# Distances computed at once by close_pairs: about 13 bytes each (XOR, count, mask), so 52 MiB.
BLOCK_ELEMENTS = 1 << 22
_BIT_WEIGHTS = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)


@dataclass(frozen=True)
class Pair:
    """Two files that look alike, and how many of their 64 hash bits differ."""

    first: Path
    second: Path
    distance: int


def phash(image: np.ndarray) -> np.uint64:
    """The 64-bit perceptual hash of an RGB image."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return np.uint64(np.sum(_BIT_WEIGHTS[bits], dtype=np.uint64))


def hash_files(files: Sequence[Path]) -> tuple[np.ndarray, list[Path], list[images.Skipped]]:
    """Hashes of the readable files, those files, and the skipped ones."""
    hashes, kept, skipped = [], [], []
    for path in files:
        try:
            hashes.append(phash(images.decode_rgb(images.read_file(Path(path)), min_side=32)))
            kept.append(Path(path))
        except (images.UnreadableImageError, OSError, cv2.error) as error:
            skipped.append(images.Skipped(Path(path), str(error)))
    return np.array(hashes, dtype=np.uint64), kept, skipped


def close_pairs(
    hashes_a: np.ndarray,
    files_a: list[Path],
    hashes_b: np.ndarray | None = None,
    files_b: list[Path] | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    block_elements: int = BLOCK_ELEMENTS,
) -> list[Pair]:
    """Pairs within one set (``b`` omitted) or across two sets, closest first.

    A blocked scan: a band of rows of ``a`` is compared with all of ``b`` at a time, about
    ``block_elements`` distances per band, so memory stays near 13 bytes per element
    whatever the number of images. Within one set only the pairs above the diagonal are
    computed. At 12 of 64 bits an index (multi-index hashing, say) would still have to
    compare most pairs, so every pair is compared, in vectorised bands.
    """
    within = hashes_b is None
    if within:
        hashes_b, files_b = hashes_a, files_a
    rows_per_band = max(1, block_elements // max(len(hashes_b), 1))
    found: list[tuple[int, int, int]] = []
    for start in range(0, len(hashes_a), rows_per_band):
        band = hashes_a[start : start + rows_per_band]
        first_column = start + 1 if within else 0
        distances = np.bitwise_count(band[:, np.newaxis] ^ hashes_b[np.newaxis, first_column:])
        close = distances <= max_distance
        if within:  # row r of the band is image start + r; keep columns after it
            close &= np.triu(np.ones_like(close), k=0)
        rows, columns = np.nonzero(close)
        found += zip(
            (start + rows).tolist(),
            (first_column + columns).tolist(),
            distances[rows, columns].tolist(),
            strict=True,
        )
    pairs = [Pair(files_a[i], files_b[j], distance) for i, j, distance in found]
    return sorted(pairs, key=lambda pair: (pair.distance, str(pair.first), str(pair.second)))


@dataclass(frozen=True)
class DatasetDuplicates:
    """The near-duplicate pairs per group, how many images were hashed, and the skipped ones."""

    pairs: dict[str, list[Pair]]
    hashed: int
    skipped: list[images.Skipped]


def find_in_dataset(data_dir: Path, max_distance: int = DEFAULT_MAX_DISTANCE) -> DatasetDuplicates:
    """Near-duplicates within training, within validation, and across the two."""
    files = dataset.collect_files(Path(data_dir))
    train_hashes, train_files, train_skipped = hash_files(files.train.paths)
    val_hashes, val_files, val_skipped = hash_files(files.val.paths)
    pairs = {
        "within training": close_pairs(train_hashes, train_files, max_distance=max_distance),
        "within validation": close_pairs(val_hashes, val_files, max_distance=max_distance),
        "across training and validation": close_pairs(
            train_hashes, train_files, val_hashes, val_files, max_distance
        ),
    }
    return DatasetDuplicates(pairs, len(train_files) + len(val_files), train_skipped + val_skipped)


def format_report(found: dict[str, list[Pair]], root: Path | None = None) -> str:
    """Counts per group, then one line per pair."""

    def name(path: Path) -> str:
        return str(path.relative_to(root)) if root else paths.display(path)

    lines = []
    for group, pairs in found.items():
        lines.append(f"{group}: {len(pairs)} pair(s)")
        lines += [
            f"  distance {p.distance:>2}: {name(p.first)}  ~  {name(p.second)}" for p in pairs
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: report near-duplicates in a dataset folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="dataset folder (any layout data_dir takes)")
    parser.add_argument(
        "--max-distance",
        type=int,
        default=DEFAULT_MAX_DISTANCE,
        help="most differing hash bits (of 64) that still count as alike",
    )
    args = parser.parse_args(argv)
    data_dir = args.data_dir.expanduser().resolve()
    try:
        found = find_in_dataset(data_dir, args.max_distance)
    except (dataset.DatasetError, dataset.DataNotFoundError) as error:
        print(error, file=sys.stderr)
        return 2
    print(f"Near-duplicates in {data_dir} (pHash, at most {args.max_distance} of 64 bits differ)")
    print(f"Hashed {found.hashed} image(s); {images.format_skipped(found.skipped)}\n")
    if not found.hashed:
        print("No image could be read, so there is nothing to compare.", file=sys.stderr)
        return 1
    print(format_report(found.pairs, data_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
