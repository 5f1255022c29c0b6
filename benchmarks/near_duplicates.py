"""Near-duplicate search benchmark: time and peak memory of the blocked scan at scale.

    .venv/bin/python benchmarks/near_duplicates.py [--sizes 10000 100000]

Searches N random 64-bit hashes, with 1% planted near-copies, for pairs within 12 bits,
as ``make duplicates`` does within one split. Two methods:

- ``blocked scan``: ``utils.near_duplicates.close_pairs``, bands of rows against all hashes;
- ``full matrix``: the N x N distance matrix the search used before, measured only where it
  fits in memory (its XOR matrix alone is 8 N^2 bytes: 80 GB at 100,000 hashes).

Peak memory is what ``tracemalloc`` sees NumPy allocate during the search (the hashes
themselves excluded). Hashing the images is not included: it reads every file once and
grows linearly.
"""

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from utils import near_duplicates

MAX_DISTANCE = near_duplicates.DEFAULT_MAX_DISTANCE
FULL_MATRIX_LIMIT = 20_000


def planted_hashes(count: int, seed: int = 0) -> np.ndarray:
    """``count`` random hashes; 1% of them copies of an earlier one with 0 to 12 bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    for index in rng.choice(np.arange(1, count), count // 100, replace=False):
        flips = rng.choice(64, rng.integers(0, MAX_DISTANCE + 1), replace=False)
        mask = np.uint64(sum(1 << int(bit) for bit in flips))
        hashes[index] = hashes[rng.integers(0, index)] ^ mask
    return hashes


def full_matrix(hashes: np.ndarray) -> int:
    """Pairs within ``MAX_DISTANCE`` by the full distance matrix."""
    distances = np.bitwise_count(hashes[:, np.newaxis] ^ hashes[np.newaxis, :])
    close = (distances <= MAX_DISTANCE) & np.triu(np.ones_like(distances, dtype=bool), k=1)
    return int(close.sum())


def measure(search, hashes: np.ndarray) -> tuple[int, float, float]:
    """Pairs found, seconds and peak MiB allocated by ``search(hashes)``."""
    tracemalloc.start()
    start = time.perf_counter()
    found = search(hashes)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return found, seconds, peak


def main() -> None:
    """Print a Markdown table of both methods at each size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    files = [Path(f"{i}.jpg") for i in range(max(args.sizes))]

    def blocked(hashes: np.ndarray) -> int:
        return len(near_duplicates.close_pairs(hashes, files[: len(hashes)]))

    print(f"Pairs within {MAX_DISTANCE} of 64 bits, within one set of random hashes\n")
    print("| hashes | method | pairs found | time | peak memory |")
    print("|---:|---|---:|---:|---:|")
    for size in args.sizes:
        hashes = planted_hashes(size)
        methods = {"blocked scan": blocked}
        if size <= FULL_MATRIX_LIMIT:
            methods["full matrix"] = full_matrix
        for name, search in methods.items():
            found, seconds, peak = measure(search, hashes)
            print(f"| {size:,} | {name} | {found:,} | {seconds:.1f} s | {peak:,.0f} MiB |")
        if size > FULL_MATRIX_LIMIT:
            need = (8 + 1 + 1 + 1) * size**2 / 2**30
            print(f"| {size:,} | full matrix | not run | | would need about {need:,.0f} GiB |")


if __name__ == "__main__":
    main()
