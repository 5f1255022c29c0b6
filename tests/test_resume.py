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

from utils import models, runs, sample_data, training

EPOCHS = 12
HEAD_EPOCHS = 3


def training_log(settings: dict, run_dir: Path) -> Path:
    """The log of the run's own network: section 7's for the ImageNet one, else section 6's."""
    if settings["model"] in models.PRETRAINED:
        return run_dir / training.TRANSFER_DIR / training.TRAINING_LOG
    return run_dir / training.TRAINING_LOG


def training_log_rows(log: Path) -> int:
    try:
        with open(log, newline="") as handle:
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


def kill_and_resume(settings: dict, out: Path, env: dict, kill_after: int) -> Path:
    """Start an uninterrupted run and a second one; SIGKILL the second's kernel once it has
    logged ``kill_after`` epochs, resume it with ``make resume``, and check that it ends with
    the uninterrupted run's history length and metrics. Returns the resumed run's folder."""
    pretrained = settings["model"] in models.PRETRAINED
    epochs = settings["head_epochs"] + settings["fine_tune_epochs"] if pretrained else None
    epochs = epochs or settings["num_epochs"]
    uninterrupted = start_run(settings, "uninterrupted", env)
    runner = start_run(settings, "killed", env)
    run_dir = out / "killed"
    deadline = time.monotonic() + 600
    log = training_log(settings, run_dir)
    while training_log_rows(log) < kill_after:
        assert time.monotonic() < deadline and runner.poll() is None, "training never got going"
        time.sleep(0.1)
    kernel = runs.read_status(run_dir)["pid"]
    os.kill(kernel, signal.SIGKILL)
    runner.kill()
    runner.wait(timeout=60)
    while runs.process_alive(kernel):  # a large process takes a moment to be gone
        assert time.monotonic() < deadline, "the killed kernel never exited"
        time.sleep(0.1)
    assert runs.read_status(run_dir)["status"] != runs.FINISHED
    completed = training_log_rows(log)
    assert completed < epochs

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
    for folder in (run_dir, run_dir / training.TRANSFER_DIR):
        assert not any(p.name.startswith("checkpoint") for p in folder.iterdir())
    with open(run_dir / "history.csv", newline="") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == list(range(1, epochs + 1))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] >= kill_after
    assert metrics["epochs"] == epochs

    assert uninterrupted.wait(timeout=900) == 0
    assert results(run_dir) == results(out / "uninterrupted")
    return run_dir


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
    settings |= {"head_epochs": 1, "fine_tune_epochs": 0}  # section 7, short
    run_dir = kill_and_resume(settings, out, env, kill_after=2)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["parameters"]["data_mode"] == data_mode


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_after", "phase"),
    [
        (1, "training the head"),
        (HEAD_EPOCHS, "between the phases"),
        (HEAD_EPOCHS + 1, "fine-tuning"),
    ],
)
def test_a_pretrained_run_killed_in_either_phase_resumes_to_the_same_metrics(
    tmp_path, kill_after, phase
):
    """Each phase checkpoints to its own folder; a resume skips a finished first phase."""
    data = sample_data.generate(tmp_path / "tiny", train_per_class=6, val_per_class=3)
    out = tmp_path / "out"
    env = os.environ | {"CNN_ARTISTS_OUT": str(out), "CNN_ARTISTS_DATA": str(tmp_path / "cache")}
    settings = {"data_dir": data, "image_size": 48, "crop_size": 40, "colour_jitter": 0.1}
    settings |= {"model": "efficientnet_lite0", "unfreeze_blocks": 3, "seed": 3, "verbose": 0}
    settings |= {"head_epochs": HEAD_EPOCHS, "fine_tune_epochs": HEAD_EPOCHS, "batch_size": 8}
    run_dir = kill_and_resume(settings, out, env, kill_after)
    with open(run_dir / "history.csv", newline="") as handle:
        assert [row["phase"] for row in csv.DictReader(handle)] == ["head"] * HEAD_EPOCHS + [
            "fine-tune"
        ] * HEAD_EPOCHS


@pytest.mark.slow
def test_a_head_on_frozen_features_killed_mid_training_resumes_to_the_same_metrics(tmp_path):
    """``unfreeze_blocks`` 0: a resume computes the features again and continues the head's
    epochs from its checkpoint, with the same mirrored choices."""
    data = sample_data.generate(tmp_path / "tiny", train_per_class=6, val_per_class=3)
    out = tmp_path / "out"
    env = os.environ | {"CNN_ARTISTS_OUT": str(out), "CNN_ARTISTS_DATA": str(tmp_path / "cache")}
    settings = {"data_dir": data, "image_size": 48, "model": "efficientnet_lite0", "seed": 3}
    # The head's epochs take milliseconds: enough of them that the kill lands mid-training.
    settings |= {"unfreeze_blocks": 0, "head_epochs": 300, "fine_tune_epochs": 0}
    settings |= {"batch_size": 8, "verbose": 0}
    run_dir = kill_and_resume(settings, out, env, kill_after=2)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["head_only_epochs"] == 300
