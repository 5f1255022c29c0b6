"""The notebook end to end: a papermill run on real paintings, and proof that nbval bites.

nbval itself runs the committed notebook as part of ``make test`` (``notebooks/`` is a
test path); these tests add what that cannot show on its own.
"""

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from utils import run_notebook
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
}


def test_papermill_run_on_real_paintings(subset_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    exit_code = run_notebook.main(
        [
            "-p",
            "data_dir",
            str(subset_dir),
            "-p",
            "num_epochs",
            "6",
            "-p",
            "image_size",
            "48",
            "-p",
            "run_name",
            "real",
            "-p",
            "verbose",
            "0",
        ]
    )
    assert exit_code == 0
    run_dir = tmp_path / "out" / "real"
    assert {p.name for p in run_dir.iterdir()} >= ARTIFACTS

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["class_names"] == sorted(
        p.name for p in (subset_dir / "training" / "training").iterdir()
    )
    with open(subset_dir / "manifest.csv", newline="") as handle:
        splits = Counter(row["split"] for row in csv.DictReader(handle))
    assert metrics["images"] == {"training": splits["training"], "validation": splits["validation"]}
    assert metrics["parameters"]["data_dir"] == str(subset_dir)
    assert metrics["skipped_files"] == []
    assert metrics["accuracy"] > metrics["chance_accuracy"] + 0.05

    report = (run_dir / "classification_report.txt").read_text()
    assert [line.split()[0] for line in report.splitlines()[2:12]] == metrics["class_names"]
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 6
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.output_shape == (None, 10)


def head_of_notebook(destination: Path, edit=None) -> Path:
    """Copy the committed notebook up to the arrays section (before training), optionally edited.

    A ``utils`` link beside the copy lets its setup cell find the project's package.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    end = next(i for i, c in enumerate(notebook.cells) if "size_statistics" in c.source)
    notebook.cells = notebook.cells[: end + 1]
    if edit:
        edit(notebook.cells)
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "utils").symlink_to(run_notebook.paths.PROJECT_ROOT / "utils")
    path = destination / "head.ipynb"
    nbformat.write(notebook, path)
    return path


def run_nbval(path: Path) -> subprocess.CompletedProcess:
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
        env=os.environ | {"PYTHONPATH": ""},
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
        assert "1 failed" in result.stdout or "2 failed" in result.stdout
