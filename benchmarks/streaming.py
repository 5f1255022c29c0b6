"""Memory and speed of the two data modes as the data set grows, through the notebook.

    .venv/bin/python benchmarks/streaming.py [--sizes 2000 10000 40000]

For each size, the notebook trains twice on the same synthetic paintings, once with
``data_mode: memory`` and once with ``data_mode: disk`` (memory-mapped from the cache),
each with an empty cache, so every painting is decoded in both runs. Measured:

- peak **anonymous** memory of the kernel (``RssAnon`` in ``/proc/<pid>/status``, sampled
  every 0.2 s): what the run really holds. Pages of a memory-mapped file are left out, as
  the operating system can drop them at any time;
- loading time (decoding and resizing every painting, from ``metrics.json``);
- images/s of the first and of the later epochs (from Keras's per-epoch log: steps x time
  per step).

The paintings: the sample generator writes 2,000 training and 400 validation images once;
larger sets hard-link those files under further names, so decoding costs the same per
image. The network is the reference (``shallow``) at 64 px, 3 epochs, so that the data,
not the model, dominates.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from notebook_runs import benchmark_out_dir, make_command

from utils import paths, runs, sample_data

BASE_TRAIN_PER_ARTIST = 200
SETTINGS = {"model": "shallow", "image_size": 64, "num_epochs": 3, "batch_size": 64}
SETTINGS |= {"verbose": 2, "weights": ""}


def make_data(base: Path, target: Path, size: int) -> Path:
    """``size`` training paintings (hard links to ``base``'s) and ``base``'s validation ones."""
    for artist_dir in sorted((base / "training" / "training").iterdir()):
        originals = sorted(artist_dir.iterdir())
        folder = target / "training" / "training" / artist_dir.name
        folder.mkdir(parents=True)
        for number in range(size // len(sample_data.ARTISTS)):
            original = originals[number % len(originals)]
            os.link(original, folder / f"{number:05d}-{original.name}")
    os.symlink(base / "validation", target / "validation")
    return target


def anonymous_kib(pid: int) -> int:
    """``RssAnon`` of process ``pid`` in KiB, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(data: Path, data_mode: str, out_dir: Path) -> dict:
    """Run the notebook once and sample its kernel's anonymous memory until it ends."""
    run_name = f"{data.name}-{data_mode}"
    settings = SETTINGS | {"data_dir": data, "data_mode": data_mode}
    arguments = [
        part for k, v in (settings | {"run_name": run_name}).items() for part in ("-p", k, str(v))
    ]
    with tempfile.TemporaryDirectory(prefix="cache-") as cache_root:
        env = os.environ | {"CNN_ARTISTS_OUT": str(out_dir), "CNN_ARTISTS_DATA": cache_root}
        log_path = out_dir / f"{run_name}.log"
        with open(log_path, "w") as log:
            runner = subprocess.Popen(
                [sys.executable, "-m", "utils.run_notebook", *arguments],
                cwd=paths.PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            peak = 0
            while runner.poll() is None:
                pid = runs.read_status(out_dir / run_name).get("pid")
                if isinstance(pid, int):
                    peak = max(peak, anonymous_kib(pid))
                time.sleep(0.2)
    if runner.returncode != 0:
        sys.exit(f"The run {out_dir / run_name} failed; see {log_path}")
    metrics = json.loads((out_dir / run_name / "metrics.json").read_text())
    epoch_seconds = [
        int(steps) * float(per_step) / (1000 if unit == "ms" else 1)
        for steps, per_step, unit in re.findall(
            r"(\d+)/\1 - \d+s - (\d+)(ms|s)/step", log_path.read_text()
        )
    ]
    images = metrics["images"]["training"]
    later = epoch_seconds[1:] or epoch_seconds
    return {
        "images": images,
        "mode": data_mode,
        "peak_anon_mib": peak / 1024,
        "loading_s": metrics["seconds"]["loading"],
        "first_epoch_ips": images / epoch_seconds[0],
        "later_epochs_ips": images * len(later) / sum(later),
        "command": make_command([], {k: v for k, v in settings.items() if k != "verbose"}),
    }


def main() -> None:
    """Print one Markdown row per size and mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 40000])
    args = parser.parse_args()
    out_dir = benchmark_out_dir("streaming")
    work = out_dir / "data"
    base = sample_data.generate(
        work / "base", train_per_class=BASE_TRAIN_PER_ARTIST, val_per_class=40
    )
    rows = []
    for size in args.sizes:
        data = make_data(base, work / f"paintings-{size}", size)
        for data_mode in ("memory", "disk"):
            rows.append(measure(data, data_mode, out_dir))
            print(rows[-1], flush=True)
    print(f"\nRuns: {paths.display(out_dir)}; 2 CPU cores\n")
    print("| training images | data_mode | peak RssAnon | loading | first epoch | later epochs |")
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['images']:,} | {row['mode']} | {row['peak_anon_mib']:,.0f} MiB "
            f"| {row['loading_s']:.0f} s | {row['first_epoch_ips']:,.0f} images/s "
            f"| {row['later_epochs_ips']:,.0f} images/s |"
        )
    print(f"\nCommand of a row (data_dir and data_mode vary): {rows[-1]['command']}")


if __name__ == "__main__":
    main()
