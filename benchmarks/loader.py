"""Loader benchmark: images/s and peak memory of three ways to turn paintings into arrays.

    .venv/bin/python benchmarks/loader.py            # or: make benchmark

Compared, on the same files, at 64, 128 and 224 px:

- ``reference``: the course solution's approach, rebuilt from its description: a sequential
  ``cv2.imread`` + ``cv2.resize`` loop, then one float64 array scaled to 0-1.
- ``keras``: ``keras.utils.image_dataset_from_directory``, iterated to the end and
  stacked (float32, as it yields).
- ``cnn-artists``: ``utils.images.load_images`` (threads, reduced JPEG decoding, uint8),
  without the on-disk cache.

Each measurement runs in a fresh child process that first imports every library, so
that "peak memory" is the growth of the peak resident set over that baseline: what the
loading itself costs. Files are read once beforehand so that every method finds them in
the page cache. Needs the real paintings in ../shared/data (see the README).
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT.parent / "shared" / "data"
DATASETS = {
    "fullsize (80 originals, ~1000 px)": SHARED / "impressionist-fullsize",
    "subset (1,230 images, <=512 px)": SHARED / "impressionist-subset" / "training" / "training",
}
METHODS = ("reference", "keras", "cnn-artists")
SIZES = (64, 128, 224)


def current_rss_kib() -> int:
    """Resident memory of this process now, in KiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder``'s class sub-folders, sorted."""
    return sorted(p for p in folder.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def load_reference(files: list[Path], size: int):
    """Sequential imread loop with a float64 result, as in the course's reference."""
    import cv2
    import numpy as np

    arrays = [cv2.resize(cv2.imread(str(path)), (size, size)) for path in files]
    return np.array(arrays, dtype=np.float64) / 255.0


def load_keras(folder: Path, size: int):
    """keras.utils.image_dataset_from_directory, iterated and stacked."""
    import numpy as np

    from utils.backend import keras

    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(size, size), batch_size=32, shuffle=False, verbose=False
    )
    return np.concatenate([batch.numpy() for batch, _ in dataset])


def load_ours(files: list[Path], size: int):
    """This project's loader, without its cache."""
    from utils import images

    return images.load_images(files, size).X


def child(method: str, folder: Path, size: int) -> None:
    """Measure one method once, in this process, and print a JSON line."""
    import cv2  # noqa: F401  (imported before the baseline, like every library)
    import numpy  # noqa: F401

    from utils import images  # noqa: F401
    from utils.backend import keras  # noqa: F401

    files = image_files(folder)
    baseline = current_rss_kib()
    start = time.perf_counter()
    if method == "reference":
        X = load_reference(files, size)
    elif method == "keras":
        X = load_keras(folder, size)
    else:
        X = load_ours(files, size)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "images": len(X),
                "seconds": seconds,
                "peak_mib": (peak - baseline) / 1024,
                "dtype": str(X.dtype),
                "array_mib": X.nbytes / 2**20,
            }
        )
    )


def measure(method: str, folder: Path, size: int) -> dict:
    """Run ``child`` in a fresh interpreter and return its measurement."""
    from fresh_process import run_child

    return run_child(__file__, method, str(folder), str(size))


def main() -> None:
    """Run every method on every dataset and size, then print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), int(args.child[2]))
        return
    missing = [str(folder) for folder in DATASETS.values() if not folder.is_dir()]
    if missing:
        sys.exit(
            f"Real paintings not found: {', '.join(missing)}. The benchmark needs ../shared/data."
        )
    for folder in DATASETS.values():
        for path in image_files(folder):
            path.read_bytes()
    print(f"Machine: {os.cpu_count()} CPU cores; Python {sys.version.split()[0]}\n")
    print(
        "| data | size | loader | images/s | peak memory (MiB) | array | speed-up | memory saving |"
    )
    print("|---|---|---|---:|---:|---|---:|---:|")
    for label, folder in DATASETS.items():
        for size in SIZES:
            results = {method: measure(method, folder, size) for method in METHODS}
            reference = results["reference"]
            for method, result in results.items():
                rate = result["images"] / result["seconds"]
                speedup = rate / (reference["images"] / reference["seconds"])
                saving = reference["peak_mib"] / max(result["peak_mib"], 0.1)
                print(
                    f"| {label} | {size} | {method} | {rate:,.0f} | {result['peak_mib']:,.1f} | "
                    f"{result['dtype']}, {result['array_mib']:,.1f} MiB | {speedup:.1f}x | "
                    f"{saving:.1f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
