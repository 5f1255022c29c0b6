"""The papermill runner: parameter parsing, refusal of typos, and its own run folder."""

import json

import nbformat
import pytest
from conftest import write_notebook

from utils import run_notebook, runs

DEFAULTS = {"image_size": 64, "num_epochs": 15, "run_name": "", "model": "cnn", "data_dir": ""}


@pytest.mark.parametrize(
    ("text", "value"),
    [("20", 20), ("0.01", 0.01), ("True", True), ("false", False), ("None", None), ("cnn", "cnn")],
)
def test_parse_value(text, value):
    assert run_notebook.parse_value(text) == value


def test_later_sources_win_and_pairs_beat_files(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text("image_size: 128\nnum_epochs: 40\n")
    second = tmp_path / "b.yaml"
    second.write_text("num_epochs: 30\n")
    parameters = run_notebook.collect_parameters(
        [str(first), str(second)], [("image_size", "32")], DEFAULTS
    )
    assert parameters == {"image_size": 32, "num_epochs": 30}


def test_unknown_parameter_is_refused():
    with pytest.raises(SystemExit, match="num_epoch"):
        run_notebook.collect_parameters([], [("num_epoch", "3")], DEFAULTS)


def test_the_notebook_declares_every_documented_parameter():
    declared = run_notebook.notebook_defaults(run_notebook.NOTEBOOK)
    expected = {
        "data_dir",
        "image_size",
        "resize_mode",
        "model",
        "filters",
        "num_epochs",
        "batch_size",
        "optimizer",
        "learning_rate",
        "validation_split",
        "holdout_fold",
        "holdout_folds",
        "seed",
        "run_name",
        "verbose",
        "painting",
        "suspected_artist",
        "crop_size",
        "colour_jitter",
        "label_smoothing",
        "cosine_decay",
        "weights",
        "fine_tune",
        "precision",
    }
    assert set(declared) == expected
    assert declared["data_dir"] == ""


def test_params_files_only_use_declared_names():
    declared = run_notebook.notebook_defaults(run_notebook.NOTEBOOK)
    for params_file in sorted((run_notebook.paths.PROJECT_ROOT / "params").glob("*.yaml")):
        run_notebook.collect_parameters([str(params_file)], [], declared)


def tiny_notebook(path):
    return write_notebook(
        path,
        'run_name = ""\nmodel = "cnn"\nimage_size = 8',
        "from utils import runs\n"
        "run_dir = runs.create_run_dir(run_name)\n"
        "(run_dir / 'marker.txt').write_text(str(image_size))",
    )


def test_runs_land_in_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    args = ["--notebook", str(notebook), "-p", "run_name", "same", "-p", "image_size", "5"]
    assert run_notebook.main(args) == 0
    assert run_notebook.main(args) == 0
    first, second = tmp_path / "out" / "same", tmp_path / "out" / "same-2"
    for run_dir in (first, second):
        assert (run_dir / "marker.txt").read_text() == "5"
        executed = json.loads((run_dir / "notebook.ipynb").read_text())
        assert any("run_name = " in "".join(c["source"]) for c in executed["cells"])
        assert not (run_dir / ".reserved").exists()


def test_a_failing_run_reports_and_keeps_its_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    args = ["--notebook", str(notebook), "-p", "run_name", "bad name"]
    with pytest.raises(SystemExit, match="run_name"):
        run_notebook.main(args)
    args = ["--notebook", str(notebook), "-p", "run_name", "ok", "-p", "image_size", "x/0"]
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[-1].source += "\n1 / 0"
    nbformat.write(nb, notebook)
    assert run_notebook.main(args) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert (tmp_path / "out" / "ok" / "notebook.ipynb").is_file()


def tracked_notebook(path, last_cell: str):
    """A notebook that tracks its status like the real one, then runs ``last_cell``."""
    notebook = write_notebook(
        path,
        'run_name = ""\nmodel = "cnn"\nimage_size = 8',
        "from utils import runs\n"
        "run_dir = runs.create_run_dir(run_name)\n"
        "runs.track_status(run_dir)",
    )
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(last_cell))
    nbformat.write(nb, notebook)
    return notebook


@pytest.mark.parametrize(
    ("last_cell", "cell", "error"),
    [
        ("x = 1\nraise ValueError('no paintings')", 4, "ValueError: no paintings"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", None, "DeadKernelError"),
        ("runs.finish(run_dir)", None, None),
    ],
)
def test_status_json_says_how_the_run_ended(tmp_path, monkeypatch, last_cell, cell, error):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = tracked_notebook(tmp_path / "tracked.ipynb", last_cell)
    exit_code = run_notebook.main(["--notebook", str(notebook), "-p", "run_name", "tracked"])
    status = runs.read_status(tmp_path / "out" / "tracked")
    if error is None:
        assert exit_code == 0
        assert status["status"] == runs.FINISHED
        return
    assert exit_code == 1
    assert status["status"] == runs.FAILED
    assert status["cell"] == cell
    assert error in status["error"]
    if cell:
        assert status["cell_source"] == "x = 1"
