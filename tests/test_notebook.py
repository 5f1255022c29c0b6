"""nbval on the committed chapter, in both kernels, and proof that it bites.

The recipes on real paintings are in ``test_recipes.py``, a file of their own so that
``make test-all``'s two workers can run them beside these.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbval_record import RECORD_TO
from notebook_outputs import (
    ARTIFACTS,
    EXEMPT,
    IGNORE_OUTPUT,
    TRAINED,
    check_artifacts_agree,
    check_trained_cells,
    marker_of,
    output_text,
)

from utils import explain, run_notebook, runs, sample_data

NOTEBOOK = run_notebook.NOTEBOOK


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


def nbval_command(kernel: str, *arguments: str) -> list[str]:
    """pytest with nbval in ``kernel`` and the project's sanitize file, then ``arguments``."""
    config = run_notebook.paths.PROJECT_ROOT / "tests" / "nbval_sanitize.cfg"
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval",
        f"--nbval-kernel-name={kernel}",
        f"--nbval-sanitize-with={config}",
        *arguments,
    ]


def run_nbval(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        nbval_command(run_notebook.KERNEL_NAME, "--rootdir", str(path.parent), str(path)),
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
    """The same copy unedited passes: ``test_nbval_passes_on_another_machine`` runs it, with
    other stored versions and the data elsewhere besides."""
    result = run_nbval(head_of_notebook(tmp_path / change.replace(" ", "-"), edit))
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


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_every_cell_nbval_ignores_is_checked_or_exempt():
    """A cell may skip nbval's comparison only with a check beside it (or if it shows a
    training log with times), and every check finds its one cell."""
    cells = code_cells(nbformat.read(NOTEBOOK, as_version=4))
    ignored = [c.source for c in cells if IGNORE_OUTPUT in c.metadata.get("tags", [])]
    unchecked = [source for source in ignored if marker_of(source) is None]
    assert not unchecked, f"ignored without a check in tests/notebook_outputs.py: {unchecked}"
    for marker in (*TRAINED, *EXEMPT):
        matching = [c for c in cells if marker in c.source]
        assert len(matching) == 1, marker
        assert IGNORE_OUTPUT in matching[0].metadata.get("tags", []), marker


CHECK_KERNEL = "cnn-artists-check"  # the Makefile installs it: TF_ENABLE_ONEDNN_OPTS=0
SANE_ACCURACY = 0.5  # on the sample, where guessing gives 0.1 and the network about 0.85


def nbval_pass(tmp_path: Path, kernel: str) -> tuple[subprocess.CompletedProcess, list[str], Path]:
    """nbval on the committed notebook in ``kernel``: the result, what each code cell
    showed (``output_text``) and the run folder it made."""
    out, record = tmp_path / "out", tmp_path / "outputs.json"
    result = subprocess.run(
        # The project's own addopts would add its kernel a second time.
        nbval_command(kernel, "-p", "tests.nbval_record", "--override-ini=addopts=", str(NOTEBOOK)),
        cwd=run_notebook.paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"CNN_ARTISTS_OUT": str(out), RECORD_TO: str(record)},
        timeout=1800,
    )
    recorded = json.loads(record.read_text()) if record.is_file() else {}
    shown = [output_text(recorded.get(str(n), [])) for n in range(len(code_cells_of_notebook()))]
    run_dirs = [p for p in out.iterdir() if p.is_dir()] if out.is_dir() else []
    assert len(run_dirs) == 1, (run_dirs, result.stdout[-3000:])
    return result, shown, run_dirs[0]


def code_cells_of_notebook() -> list[nbformat.NotebookNode]:
    return code_cells(nbformat.read(NOTEBOOK, as_version=4))


def check_nbval_pass(result: subprocess.CompletedProcess, shown: list[str], run_dir: Path):
    """nbval passed; the cells it does not compare said what the run saved; the run is sane."""
    assert result.returncode == 0, result.stdout[-5000:]
    assert check_trained_cells(code_cells_of_notebook(), shown, run_dir) == len(TRAINED)
    metrics = check_artifacts_agree(run_dir)
    assert SANE_ACCURACY <= metrics["accuracy"] <= 1.0, metrics["accuracy"]
    assert {p.name for p in run_dir.iterdir()} >= ARTIFACTS - {"notebook.ipynb"}
    assert len(list((run_dir / "grad_cam").glob("*.png"))) == len(
        explain.load_cases(run_dir / "grad_cam" / "cases.npz")
    )


def test_nbval_on_the_notebook_and_what_it_does_not_compare(tmp_path):
    """The main notebook under nbval (``make test``'s nbval pass), then the checks of the
    trained-number cells against the run folder that pass made."""
    check_nbval_pass(*nbval_pass(tmp_path, run_notebook.KERNEL_NAME))


@pytest.mark.slow
def test_nbval_passes_when_float32_rounds_otherwise(tmp_path):
    """The notebook under a kernel with oneDNN's optimisations off, so float32 is summed in
    another order, as on another processor: nbval still passes, and it must be shown that
    some trained number came out different from the stored one, or nothing was proved."""
    kernels = subprocess.run(
        [Path(sys.executable).with_name("jupyter"), "kernelspec", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert CHECK_KERNEL in json.loads(kernels.stdout)["kernelspecs"], "run make venv to add it"
    result, shown, run_dir = nbval_pass(tmp_path, CHECK_KERNEL)
    check_nbval_pass(result, shown, run_dir)
    stored = [output_text(cell.outputs) for cell in code_cells_of_notebook()]
    trained = [n for n, c in enumerate(code_cells_of_notebook()) if marker_of(c.source) in TRAINED]
    differing = [n for n in trained if shown[n] != stored[n]]
    assert differing, "every trained number came out as stored: the other arithmetic did not bite"


def replay_notebook(destination: Path, edit: Callable[[list], None] | None = None) -> Path:
    """The committed notebook with each code cell's source replaced by code that shows its
    stored outputs again (after ``edit`` changes them), and the stored outputs and tags kept.

    nbval then compares the notebook's stored outputs with "new" ones of our choosing, in
    seconds, without training: it shows what nbval would say if a run produced them.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    shown = copy.deepcopy([cell.outputs for cell in code_cells(notebook)])
    if edit:
        edit(shown)
    for cell, outputs in zip(code_cells(notebook), shown, strict=True):
        lines = ["import sys", "from IPython.display import display"]
        for output in outputs:
            if output["output_type"] == "stream":
                lines.append(f"print({output['text']!r}, end='', file=sys.{output['name']})")
            else:
                lines.append(f"display({dict(output['data'])!r}, raw=True)")
        cell.source = "\n".join(lines)
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / "replay.ipynb"
    nbformat.write(notebook, path)
    return path


def other_arithmetic(text: str) -> str:
    """What another processor might print instead: every digit moved on by one, and every
    artist's name replaced by the next one's (the best artist, the most confused pair)."""
    text = text.translate(str.maketrans("0123456789", "1234567890"))
    names = sample_data.ARTISTS
    pattern = re.compile("|".join(names))
    return pattern.sub(lambda match: names[(names.index(match[0]) + 1) % len(names)], text)


def change_outputs(which: Callable[[str], bool], change: Callable[[str], str]):
    """An ``edit`` for ``replay_notebook``: ``change`` the text of every cell ``which``
    accepts (by its source)."""

    def edit(shown):
        for cell, outputs in zip(code_cells_of_notebook(), shown, strict=True):
            if not which(cell.source):
                continue
            for output in outputs:
                if "text" in output:
                    output["text"] = change(output["text"])
                for key, value in output.get("data", {}).items():
                    if key.startswith("text/"):
                        output["data"][key] = change(value)

    return edit


def trained_cell(source: str) -> bool:
    return marker_of(source) in TRAINED


@pytest.mark.parametrize(
    ("change", "edit", "failing_cell"),
    [
        ("none", None, None),
        ("trained numbers", change_outputs(trained_cell, other_arithmetic), None),
        (
            "a class count",
            change_outputs(lambda s: "labels_by_split = " in s, lambda t: t.replace("48", "47")),
            "labels_by_split = ",
        ),
        (
            "an array shape",
            change_outputs(
                lambda s: "images.format_skipped(" in s,
                lambda t: t.replace("64, 64, 3)", "64, 64, 4)"),
            ),
            "images.format_skipped(",
        ),
    ],
)
def test_nbval_accepts_other_trained_numbers_and_rejects_other_counts(
    tmp_path, change, edit, failing_cell
):
    """Offline, without training: another processor's accuracies, sentences and
    probabilities pass nbval; another class count or array shape does not."""
    result = run_nbval(replay_notebook(tmp_path / change.replace(" ", "-"), edit))
    failed = re.findall(r"FAILED \S+::Cell (\d+)", result.stdout)
    if failing_cell is None:
        assert result.returncode == 0, result.stdout[-3000:]
        assert not failed
    else:
        [expected] = [n for n, c in enumerate(code_cells_of_notebook()) if failing_cell in c.source]
        assert failed == [str(expected)], result.stdout[-3000:]
