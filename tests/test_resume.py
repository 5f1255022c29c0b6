"""A real run killed with SIGKILL mid-training, then resumed with ``make resume``."""

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


@pytest.mark.slow
def test_a_killed_run_resumes_after_its_last_completed_epoch(tmp_path):
    data = sample_data.generate(tmp_path / "tiny", train_per_class=4, val_per_class=2)
    out = tmp_path / "out"
    env = os.environ | {"CNN_ARTISTS_OUT": str(out)}
    settings = {"data_dir": data, "image_size": 32, "num_epochs": EPOCHS, "filters": 8}
    settings |= {"batch_size": 8, "verbose": 0, "run_name": "killed"}
    arguments = [part for name, value in settings.items() for part in ("-p", name, str(value))]
    runner = subprocess.Popen(
        [sys.executable, "-m", "utils.run_notebook", *arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
