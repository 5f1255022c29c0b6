"""What checking a cache entry's checksums costs when a run opens it, at 40,000 paintings.

    .venv/bin/python benchmarks/cache_checksum.py [--paintings 40000] [--sizes 64 160]

A cache entry records the SHA-256 of each array file when it is built, and a run checks
them once when it opens the entry (``cache.load``): one sequential read of the whole
entry, where disk mode otherwise reads only each batch's rows. For each image size this
builds an entry of random uint8 paintings (written chunk by chunk, as the loader writes
them), then measures: the time of building it with its checksums against the same
writes without them, and the time to open it with and without the check, cold (the
entry's pages dropped from the page cache with ``posix_fadvise``) and warm. Results go to
``benchmarks/results/cache_checksum.json``.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from utils import cache, published

RESULTS = Path(__file__).parent / "results" / "cache_checksum.json"
CHUNK = 1000  # paintings written at a time


def drop_from_page_cache(entry: Path) -> None:
    """Ask the kernel to forget the entry's pages, so the next read comes from the disk."""
    for path in entry.iterdir():
        with open(path, "rb") as file:
            os.fsync(file.fileno())
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def build_entry(cache_dir: Path, key: str, paintings: int, size: int) -> float:
    """Build an entry of random paintings; return the seconds it took."""
    generator = np.random.default_rng(0)
    start = time.perf_counter()
    with cache.build(cache_dir, key) as entry:
        X = entry.array("X", (paintings, size, size, 3), np.uint8)
        for first in range(0, paintings, CHUNK):
            rows = min(CHUNK, paintings - first)
            X[first : first + rows] = generator.integers(0, 256, (rows, size, size, 3), np.uint8)
        X.flush()
        del X
        entry.put("kept", np.arange(paintings))
    return time.perf_counter() - start


def timed_open(cache_dir: Path, key: str, verify: bool, cold: bool) -> float:
    """Seconds for ``cache.load`` to open the entry memory-mapped, as a disk-mode run does."""
    if cold:
        drop_from_page_cache(cache_dir / key)
    start = time.perf_counter()
    stored = cache.load(cache_dir, key, mmap=True, verify=verify)
    seconds = time.perf_counter() - start
    assert stored is not None
    return seconds


def measure(paintings: int, size: int, work: Path) -> dict:
    """Every timing for one image size."""
    cache_dir = work / f"{size}px"
    with_checksums = build_entry(cache_dir, "with", paintings, size)
    checksum = cache.file_checksum
    cache.file_checksum = lambda path: ""  # the same build, without hashing
    try:
        without_checksums = build_entry(cache_dir, "without", paintings, size)
    finally:
        cache.file_checksum = checksum
    entry_bytes = sum(p.stat().st_size for p in (cache_dir / "with").iterdir())
    opened = {
        f"{'checked' if verify else 'unchecked'}_{'cold' if cold else 'warm'}": timed_open(
            cache_dir, "with", verify, cold
        )
        for verify in (False, True)
        for cold in (True, False)
    }
    return {
        "paintings": paintings,
        "image_size": size,
        "entry_bytes": entry_bytes,
        "build_seconds": {
            "with_checksums": round(with_checksums, 2),
            "without_checksums": round(without_checksums, 2),
        },
        "open_seconds": {name: round(seconds, 3) for name, seconds in opened.items()},
        "check_mb_per_s_cold": round(entry_bytes / 1e6 / opened["checked_cold"], 1),
    }


def main() -> None:
    """Measure each size and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paintings", type=int, default=40_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 160])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cache-checksum-", dir=Path.home()) as work:
        for size in args.sizes:
            rows.append(measure(args.paintings, size, Path(work)))
            print(json.dumps(rows[-1]))
    RESULTS.write_text(
        json.dumps(
            {
                "command": "benchmarks/cache_checksum.py "
                f"--paintings {args.paintings} --sizes {' '.join(map(str, args.sizes))}",
                "machine": published.machine(),
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
