"""A real run killed with SIGKILL mid-training, then resumed with ``make resume``, ends
with the same metrics as an uninterrupted run with the same seed, with the images in memory
or memory-mapped from disk (``data_mode``)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils import runs, sample_data

EPOCHS = 12


def training_log_rows(run_dir: Path) -> int:
    try:
        with open(run_dir / "training_log.csv", newline="") as handle:
            return len(list(csv.DictReader(handle)))
    except FileNotFoundError:
        return 0


def start_run(settings: dict, run_name: str, env: dict) -> subprocess.Popen:
    arguments = [
        part
        for name, value in (settings | {"run_name": run_name}).items()
        for part in ("-p", name, str(value))
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "utils.run_notebook", *arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def results(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {name: metrics[name] for name in ("accuracy", "macro_f1", "f1_per_artist")}


@pytest.mark.slow
@pytest.mark.parametrize("data_mode", ["memory", "disk"])
def test_a_killed_run_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path, data_mode):
    data = sample_data.generate(tmp_path / "tiny", train_per_class=6, val_per_class=3)
    out = tmp_path / "out"
    env = os.environ | {"CNN_ARTISTS_OUT": str(out), "CNN_ARTISTS_DATA": str(tmp_path / "cache")}
    # The recipe's network and augmentation: crops, colour jitter, flips and dropout.
    settings = {"data_dir": data, "image_size": 40, "crop_size": 32, "colour_jitter": 0.1}
    settings |= {"model": "brushwork", "filters": 8, "optimizer": "adamw", "seed": 3}
    settings |= {"num_epochs": EPOCHS, "batch_size": 8, "verbose": 0, "data_mode": data_mode}
    uninterrupted = start_run(settings, "uninterrupted", env)
    runner = start_run(settings, "killed", env)
    run_dir = out / "killed"
    deadline = time.monotonic() + 600
    while training_log_rows(run_dir) < 2:
        assert time.monotonic() < deadline and runner.poll() is None, "training never got going"
        time.sleep(0.1)
    kernel = runs.read_status(run_dir)["pid"]
    os.kill(kernel, signal.SIGKILL)
    runner.kill()
    runner.wait(timeout=60)
    assert runs.read_status(run_dir)["status"] != runs.FINISHED
    completed = training_log_rows(run_dir)
    assert completed < EPOCHS

    resumed = subprocess.run(
        ["make", "--no-print-directory", "resume", f"RUN={run_dir}"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert runs.read_status(run_dir)["status"] == runs.FINISHED
    assert (run_dir / "notebook.interrupted-1.ipynb").is_file()
    assert (run_dir / "notebook.ipynb").is_file()
    assert not (run_dir / "checkpoint").exists()
    with open(run_dir / "history.csv", newline="") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == list(range(1, EPOCHS + 1))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] >= 2
    assert metrics["parameters"]["num_epochs"] == EPOCHS
    assert metrics["parameters"]["data_mode"] == data_mode

    assert uninterrupted.wait(timeout=900) == 0
    assert results(run_dir) == results(out / "uninterrupted")
