"""The notebook end to end: a papermill run on real paintings, and proof that nbval bites.

nbval itself runs the committed notebook as part of ``make test`` (``notebooks/`` is a
test path); these tests add what that cannot show on its own.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from utils import run_notebook, runs, sample_data
from utils.backend import keras

NOTEBOOK = run_notebook.NOTEBOOK
ARTIFACTS = {
    "notebook.ipynb",
    "classification_report.txt",
    "classification_report.json",
    "metrics.json",
    "history.csv",
    "learning_curves.png",
    "confusion_matrix.png",
    "model.keras",
    "model_info.json",
    "status.json",
    "grad_cam",
}


@pytest.mark.slow
def test_the_recommended_kaggle_command_on_real_paintings(subset_dir, tmp_path):
    """The README's ``make run`` with params/kaggle.yaml, in bfloat16 and shortened to one
    epoch: crops, ten views, Grad-CAM and attribution all run, and every artifact is written.

    Slow where the processor has no bfloat16 units: about 12 minutes on 2 cores that emulate it.
    """
    out = tmp_path / "out"
    parameters = (
        f"-f params/kaggle.yaml -p data_dir {subset_dir} -p num_epochs 1 "
        "-p precision mixed_bfloat16 -p run_name kaggle -p verbose 0"
    )
    result = subprocess.run(
        ["make", "--no-print-directory", "run", f"PARAMS={parameters}"],
        cwd=run_notebook.paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"CNN_ARTISTS_OUT": str(out)},
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = out / "kaggle"
    assert {p.name for p in run_dir.iterdir()} >= ARTIFACTS
    assert runs.read_status(run_dir)["status"] == runs.FINISHED
    assert len(list((run_dir / "grad_cam").glob("*.png"))) == 4

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["parameters"]["precision"] == "mixed_bfloat16"
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


def head_of_notebook(destination: Path, edit=None) -> Path:
    """Copy the committed notebook up to the arrays section (before training), optionally edited.

    The copy lies outside the project: it imports ``utils`` from the installed package.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    end = next(i for i, c in enumerate(notebook.cells) if "As float64, X_train" in c.source)
    notebook.cells = notebook.cells[: end + 1]
    if edit:
        edit(notebook.cells)
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / "head.ipynb"
    nbformat.write(notebook, path)
    return path


def run_nbval(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    config = run_notebook.paths.PROJECT_ROOT / "tests" / "nbval_sanitize.cfg"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval",
            f"--nbval-kernel-name={run_notebook.KERNEL_NAME}",
            f"--nbval-sanitize-with={config}",
            "--rootdir",
            str(path.parent),
            str(path),
        ],
        cwd=path.parent,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": ""} | (env or {}),
        timeout=600,
    )


def replace_in_cell(marker: str, old: str, new: str):
    def edit(cells):
        cell = next(c for c in cells if marker in c.source)
        assert old in cell.source
        cell.source = cell.source.replace(old, new)

    return edit


@pytest.mark.parametrize(
    ("change", "edit"),
    [
        ("none", None),
        (
            "class order",
            replace_in_cell(
                "class_names = files.class_names", "files.class_names", "files.class_names[::-1]"
            ),
        ),
        (
            "array shape",
            replace_in_cell("image_size: int = 64", "image_size: int = 64", "image_size: int = 32"),
        ),
    ],
)
def test_nbval_catches_a_change_of_class_order_or_shape(tmp_path, change, edit):
    result = run_nbval(head_of_notebook(tmp_path / change.replace(" ", "-"), edit))
    if change == "none":
        assert result.returncode == 0, result.stdout[-3000:]
    else:
        assert result.returncode == 1, result.stdout[-3000:]
        assert re.search(r"\b\d+ failed", result.stdout), result.stdout[-3000:]


def alter_stored_versions(cells):
    """Pretend the notebook was last run elsewhere: other versions of Python and every library."""
    cell = next(c for c in cells if "runs.library_versions()" in c.source)
    text = cell.outputs[0]["text"]
    altered = re.sub(r"(?m)^(\S+ +)\S+$", r"\g<1>0.0.1rc9", text)
    assert altered != text and altered.count("0.0.1rc9") == len(runs.library_versions())
    cell.outputs[0]["text"] = altered


def test_nbval_passes_on_another_machine(tmp_path):
    """Other library versions and another data folder (CNN_ARTISTS_DATA) are not failures."""
    data_root = tmp_path / "data-elsewhere"
    shutil.copytree(sample_data.ensure_sample_data(), data_root / "sample")
    notebook = head_of_notebook(tmp_path / "versions", alter_stored_versions)
    result = run_nbval(notebook, {"CNN_ARTISTS_DATA": str(data_root)})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout
