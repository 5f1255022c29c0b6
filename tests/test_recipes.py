"""The README's recipes on real paintings, end to end through ``make``, each cut to the
fewest epochs that still run every step (``make test-all``; skipped without ``../shared``)."""

import csv
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from notebook_outputs import ARTIFACTS, check_artifacts_agree

from utils import paths, runs, training
from utils.backend import keras


def run_make(*arguments: str, out: Path, timeout: int) -> subprocess.CompletedProcess:
    """A ``make`` target of the project, as a user types it, with results in ``out``."""
    return subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"CNN_ARTISTS_OUT": str(out)},
        timeout=timeout,
    )


def run_recipe(parameters: str, run_name: str, out: Path) -> Path:
    """``make run PARAMS=...`` with ``-p run_name``; it must end with every artifact written.
    Returns the run's folder."""
    result = run_make("run", f"PARAMS={parameters} -p run_name {run_name}", out=out, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = out / run_name
    assert {p.name for p in run_dir.iterdir()} >= ARTIFACTS
    return run_dir


@pytest.mark.slow
def test_the_recommended_kaggle_command_on_real_paintings(subset_dir, tmp_path):
    """The README's ``make run`` with params/kaggle.yaml, shortened to one epoch: crops, ten
    views, Grad-CAM and attribution all run, and every artifact is written.

    The file's ``precision: auto`` picks bfloat16 only where the processor has bfloat16 units,
    as here; elsewhere it trains in float32 (a forced bfloat16 epoch took 10 to 13 minutes on
    2 cores that emulate it). The smoke matrix's forced bfloat16 runs (tiny, in
    ``test_smoke_matrix_more.py``) check the 16-bit path on every processor.
    """
    out = tmp_path / "out"
    parameters = f"-f params/kaggle.yaml -p data_dir {subset_dir} -p num_epochs 1 -p verbose 0"
    run_dir = run_recipe(parameters, "kaggle", out)
    assert runs.read_status(run_dir)["status"] == runs.FINISHED
    assert len(list((run_dir / "grad_cam").glob("*.png"))) == 4

    metrics = json.loads((run_dir / "metrics.json").read_text())
    here = training.choose_precision(training.cpu_flags(), training.gpu_compute_capabilities())
    assert metrics["parameters"]["precision"] == here
    assert metrics["parameters"]["crop_size"] == 128
    assert metrics["class_names"] == sorted(
        p.name for p in (subset_dir / "training" / "training").iterdir()
    )
    with open(subset_dir / "manifest.csv", newline="") as handle:
        splits = Counter(row["split"] for row in csv.DictReader(handle))
    assert metrics["images"] == {"training": splits["training"], "validation": splits["validation"]}
    assert metrics["parameters"]["data_dir"] == str(subset_dir)
    assert metrics["skipped_files"] == []
    assert metrics["accuracy"] > metrics["chance_accuracy"]

    report = (run_dir / "classification_report.txt").read_text()
    assert [line.split()[0] for line in report.splitlines()[2:12]] == metrics["class_names"]
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 1
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.input_shape == (None, 128, 128, 3)
    assert model.output_shape == (None, 10)


@pytest.mark.slow
def test_the_transfer_recipe_on_real_paintings_then_predict(subset_dir, tmp_path):
    """params/transfer.yaml as the README gives it, cut to one epoch of each phase: the
    pretrained network trains, saves every artifact, and ``make predict`` answers with it,
    its closest training paintings included."""
    out = tmp_path / "out"
    parameters = (
        f"-f params/transfer.yaml -p data_dir {subset_dir} -p head_epochs 1 -p fine_tune_epochs 1 "
        "-p verbose 0"
    )
    run_dir = run_recipe(parameters, "transfer", out)
    with open(run_dir / "history.csv", newline="") as handle:
        assert [row["phase"] for row in csv.DictReader(handle)] == ["head", "fine-tune"]
    metrics = check_artifacts_agree(run_dir)
    assert metrics["parameters"]["precision"] == "float32"
    assert metrics["accuracy"] > 2 * metrics["chance_accuracy"]
    painting = next((subset_dir / "validation" / "validation" / "Renoir").iterdir())
    model = run_dir / "model.keras"
    answer = run_make("predict", f"IMAGES={painting}", f"MODEL={model}", out=out, timeout=600)
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert "Closest training paintings" in answer.stdout
    assert answer.stdout.count("training/training/") >= 3


@pytest.mark.slow
def test_the_quick_transfer_recipe_on_real_paintings(subset_dir, tmp_path):
    """params/transfer-quick.yaml exactly as the README gives it (about 2.5 minutes here):
    the ImageNet features are computed once, the head alone trains, every artifact is saved,
    and the frozen features are far better than chance on real paintings."""
    out = tmp_path / "out"
    run_dir = run_recipe(f"-f params/transfer-quick.yaml -p data_dir {subset_dir}", "quick", out)
    assert not (run_dir / "transfer" / "comparison.json").exists()  # its own network
    metrics = check_artifacts_agree(run_dir)
    assert metrics["epochs"] == metrics["head_only_epochs"] == 30
    assert metrics["accuracy"] > 4 * metrics["chance_accuracy"]
    assert "Computed the ImageNet features once" in (run_dir / "notebook.ipynb").read_text()
