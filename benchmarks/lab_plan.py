"""Time the steps of docs/teaching.md's 90-minute lab, as a student on this machine runs them.

    .venv/bin/python benchmarks/lab_plan.py            # every step; the real-painting one
                                                       # only when ../shared/data has them
    .venv/bin/python benchmarks/lab_plan.py exercises  # only the exercises; other rows kept

Each step is the ``make run`` (or ``make sweep``) command the lab gives, executed through the
same runner, one at a time and with nothing else running. For each it records the wall time
(kernel start, loading, training, evaluation, figures: what a student waits for), the
training time the run itself recorded, the images seen in training and images per second,
and the scores. The exercises are timed as students do them, in a notebook: the worked
solutions (``notebooks/solutions.ipynb``, each exercise exactly as set) run top to bottom in
the project's kernel, and each exercise's cells are timed. The results go to
``benchmarks/results/lab_plan.json``, with the machine, the date and the commit; docs/teaching.md
quotes them.
"""

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from notebook_runs import benchmark_out_dir, run

from utils import paths, published, run_notebook, runs

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
        {"model": "efficientnet_lite0", "image_size": 96, "head_epochs": 2, "fine_tune_epochs": 4},
    ),
    (
        "transfer-quick",
        "Frozen ImageNet features on real paintings",
        ["params/transfer-quick.yaml"],
        {},
    ),
)
SWEEP = "sweeps/sample_sizes.yaml"
SOLUTIONS = paths.PROJECT_ROOT / "notebooks" / "solutions.ipynb"


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


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """How long a code cell ran, from the timing nbclient records in its metadata."""
    timing = cell.metadata["execution"]
    started, ended = (timing[key] for key in ("iopub.execute_input", "shell.execute_reply"))
    return (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()


def time_exercises(out_dir: Path) -> dict:
    """Run the worked solutions top to bottom in the project's kernel; each exercise's
    seconds (its section's code cells), the setup's (loading the sample at 32 px), and the
    whole run's wall time."""
    notebook = nbformat.read(SOLUTIONS, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        notebook,
        kernel_name=run_notebook.KERNEL_NAME,
        timeout=1800,
        record_timing=True,
        resources={"metadata": {"path": str(out_dir)}},
    ).execute()
    wall = time.perf_counter() - started
    seconds: dict[str, float] = {}
    section = "setup"
    for cell in notebook.cells:
        heading = re.match(r"## (\d+)\.", cell.source) if cell.cell_type == "markdown" else None
        if heading:
            section = f"exercise {heading.group(1)}"
        elif cell.cell_type == "code":
            seconds[section] = seconds.get(section, 0.0) + cell_seconds(cell)
    return {
        "command": "notebooks/solutions.ipynb, run top to bottom in the cnn-artists kernel",
        "wall_minutes": wall / 60,
        "seconds": seconds,
        "measured": time.strftime("%Y-%m-%d"),
        "commit": published.commit(),
    }


def main(only: list[str]) -> None:
    """Time every step (or those named in ``only``), print each row, and record them with
    the rows kept from the last full run."""
    out_dir = benchmark_out_dir("lab-plan")
    if only == ["exercises"]:
        record = json.loads(RESULTS.read_text())
        record["steps"]["exercises"] = {
            "description": "Exercises in a notebook",
            **time_exercises(out_dir),
        }
        print("exercises", json.dumps(record["steps"]["exercises"]), flush=True)
        runs.write_json(RESULTS, record)
        print(f"Recorded in {paths.display(RESULTS)}")
        return
    if only:
        sys.exit("Name no step (all of them) or exercises.")
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
    rows["exercises"] = {"description": "Exercises in a notebook", **time_exercises(out_dir)}
    print("exercises", json.dumps(rows["exercises"]), flush=True)
    record = {
        "machine": published.machine(),
        "measured": time.strftime("%Y-%m-%d"),
        "commit": published.commit(),
        "steps": rows,
    }
    runs.write_json(RESULTS, record)
    print(f"Recorded in {paths.display(RESULTS)}")


if __name__ == "__main__":
    main(sys.argv[1:])
