"""Time the steps of docs/teaching.md's 90-minute lab, as a student on this machine runs them.

    .venv/bin/python benchmarks/lab_plan.py            # every step; the real-painting one
                                                       # only when ../shared/data has them

Each step is the ``make run`` (or ``make sweep``) command the lab gives, executed through the
same runner, one at a time and with nothing else running. For each it records the wall time
(kernel start, loading, training, evaluation, figures: what a student waits for), the
training time the run itself recorded, the images seen in training and images per second,
and the scores. The results go to ``benchmarks/results/lab_plan.json``, with the machine,
the date and the commit; docs/teaching.md quotes them.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from notebook_runs import benchmark_out_dir, run

from utils import paths, published, runs

RESULTS = paths.PROJECT_ROOT / "benchmarks" / "results" / "lab_plan.json"
SUBSET = "../shared/data/impressionist-subset"  # as the README gives it, from the root
# (step name, what the student does, params files, settings); the data_dir of the last
# step is filled in only when the real paintings are present.
STEPS = (
    ("default", "Run the chapter as it stands: make run", [], {}),
    (
        "small",
        "The exercises' size: edit the network, re-run",
        [],
        {"image_size": 32, "num_epochs": 8},
    ),
    (
        "transfer-sample",
        "The ImageNet network on the sample",
        [],
        {"model": "efficientnet_lite0", "image_size": 96, "num_epochs": 6},
    ),
    (
        "transfer-quick",
        "Frozen ImageNet features on real paintings",
        ["params/transfer-quick.yaml"],
        {},
    ),
)
SWEEP = "sweeps/sample_sizes.yaml"


def images_seen(metrics: dict) -> int:
    """Training images shown over the run's epochs (each epoch shows every training image)."""
    return int(metrics["epochs"]) * int(metrics["images"]["training"])


def time_step(name: str, files: list[str], settings: dict, out_dir: Path) -> dict:
    """Run one step through the runner and return its row."""
    started = time.perf_counter()
    done = run(files, settings, name, out_dir)
    wall = time.perf_counter() - started
    seen = images_seen(done.metrics)
    return {
        "command": done.command,
        "wall_minutes": wall / 60,
        "training_minutes": done.training_seconds / 60,
        "images_seen": seen,
        "images_per_second": seen / done.training_seconds,
        "accuracy": done.metrics["accuracy"],
        "macro_f1": done.metrics["macro_f1"],
        "evaluated_on": done.metrics["evaluated_on"],
    }


def time_sweep(out_dir: Path) -> dict:
    """Run the lab's sweep (six short runs on the sample) as ``make sweep`` does."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "utils.sweep", SWEEP],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"CNN_ARTISTS_OUT": str(out_dir)},
    )
    if result.returncode != 0:
        sys.exit(f"The sweep failed:\n{result.stderr[-3000:]}")
    return {
        "command": f"make sweep SWEEP={SWEEP}",
        "wall_minutes": (time.perf_counter() - started) / 60,
    }


def main() -> None:
    """Time every step, print each row, and record them all."""
    out_dir = benchmark_out_dir("lab-plan")
    rows = {}
    for name, description, files, settings in STEPS:
        if files and not paths.resolve(SUBSET).is_dir():
            print(f"{name}: skipped, no real paintings at {SUBSET}")
            continue
        if files:
            settings = {"data_dir": SUBSET, **settings}
        rows[name] = {"description": description, **time_step(name, files, settings, out_dir)}
        print(name, json.dumps(rows[name]), flush=True)
    rows["sweep"] = {"description": "Six short runs compared", **time_sweep(out_dir)}
    print("sweep", json.dumps(rows["sweep"]), flush=True)
    record = {
        "machine": published.machine(),
        "measured": time.strftime("%Y-%m-%d"),
        "commit": published.commit(),
        "steps": rows,
    }
    runs.write_json(RESULTS, record)
    print(f"Recorded in {paths.display(RESULTS)}")


if __name__ == "__main__":
    main()
