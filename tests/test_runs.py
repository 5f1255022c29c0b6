"""Run folders never overwrite each other; artifacts are written whole."""

import csv
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from utils import paths, runs


def test_run_folders_never_collide(tmp_path):
    first = runs.create_run_dir("exp", tmp_path)
    (first / "metrics.json").write_text("{}")
    second = runs.create_run_dir("exp", tmp_path)
    third = runs.create_run_dir("exp", tmp_path)
    assert [first.name, second.name, third.name] == ["exp", "exp-2", "exp-3"]
    assert (first / "metrics.json").read_text() == "{}"


def test_an_existing_run_folder_is_opened_and_a_missing_one_refused(tmp_path):
    made = runs.create_run_dir("made", tmp_path)
    assert runs.open_run_dir(str(made)) == made
    with pytest.raises(FileNotFoundError, match="run_folder"):
        runs.open_run_dir(str(tmp_path / "never-made"))


def test_a_taken_run_name_is_said_to_start_afresh(tmp_path):
    first = runs.create_run_dir("same", tmp_path)
    second = runs.create_run_dir("same", tmp_path)
    assert runs.fresh_start_note("same", first) == ""
    assert runs.fresh_start_note("", first) == ""
    note = runs.fresh_start_note("same", second)
    assert "a new run" in note and "make resume RUN=" in note and str(first) in note


def test_process_alive():
    assert runs.process_alive(os.getpid())
    assert not runs.process_alive(None)
    assert not runs.process_alive(-3)
    assert not runs.process_alive(2**22 + 12345)


@pytest.mark.parametrize("bad", ["", "../escape", "a/b", ".hidden", "with space"])
def test_unsafe_run_names_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="run_name"):
        runs.create_run_dir(bad, tmp_path)


def test_default_run_name_says_what_ran():
    name = runs.default_run_name("cnn", 64)
    assert name.endswith("-cnn-64px")
    assert name[:8].isdigit()


def test_start_opens_the_runners_folder_or_makes_a_new_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path))
    given = runs.create_run_dir("given", tmp_path)
    assert runs.start(str(given), "", "cnn", 64) == given
    assert runs.start("", "mine", "cnn", 64) == tmp_path / "mine"
    assert runs.start("", "mine", "cnn", 64) == tmp_path / "mine-2"  # never reused
    assert runs.start("", "", "lenet", 32).name.endswith("-lenet-32px")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runs.start(str(tmp_path / "gone"), "", "cnn", 64)


def test_atomic_writers(tmp_path):
    runs.write_json(tmp_path / "m.json", {"artist": "Cézanne", "f1": 0.5})
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == {
        "artist": "Cézanne",
        "f1": 0.5,
    }
    runs.write_history_csv(tmp_path / "h.csv", {"loss": [2.0, 1.5], "accuracy": [0.1, 0.25]})
    rows = list(csv.reader((tmp_path / "h.csv").open()))
    assert rows == [["epoch", "loss", "accuracy"], ["1", "2", "0.1"], ["2", "1.5", "0.25"]]
    runs.write_history_csv(tmp_path / "h.csv", {"loss": [2.0, 1.5]}, ["head", "fine-tune"])
    rows = list(csv.reader((tmp_path / "h.csv").open()))
    assert rows == [["epoch", "loss", "phase"], ["1", "2", "head"], ["2", "1.5", "fine-tune"]]
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    png = runs.save_figure(fig, tmp_path, "curve")
    plt.close(fig)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "h.csv", "m.json"]


def test_library_versions_names_the_stack():
    versions = runs.library_versions()
    assert {"python", "tensorflow", "keras", "numpy", "opencv-python-headless"} <= set(versions)
    assert versions["keras"].startswith("3.")


def test_status_is_written_whole_and_read_back(tmp_path):
    assert runs.read_status(tmp_path) == {"status": "unknown"}
    runs.track_status(tmp_path)
    assert runs.read_status(tmp_path)["status"] == runs.RUNNING
    runs.mark_failed(tmp_path, 7, "ValueError: bad", "\n\nresult = train()\nmore")
    status = runs.read_status(tmp_path)
    assert (status["status"], status["cell"], status["cell_source"], status["error"]) == (
        runs.FAILED,
        7,
        "result = train()",
        "ValueError: bad",
    )
    runs.mark_interrupted(tmp_path, 12)
    status = runs.read_status(tmp_path)
    assert (status["status"], status["cell"]) == (runs.INTERRUPTED, 12)
    assert status["resume"] == f"make resume RUN={tmp_path}"
    assert runs.finish(tmp_path) == runs.FINISHED
    assert runs.read_status(tmp_path)["status"] == runs.FINISHED
    (tmp_path / runs.STATUS_FILE).write_text("[1, 2")
    assert runs.read_status(tmp_path) == {"status": "unknown"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0001_Monet", "0001_Monet"),
        ("0002_Van Gogh/../../etc", "0002_Van_Gogh_.._.._etc"),
        ("..hidden", "hidden"),
        ("Cézanne", "C_zanne"),
        ("", "_"),
    ],
)
def test_figure_names_are_safe_file_names(name, expected):
    assert runs.safe_file_name(name) == expected


def test_a_figure_named_after_a_very_long_artist_name_is_saved(tmp_path):
    fig = plt.figure()
    path = runs.save_figure(fig, tmp_path / "grad_cam", "0003_" + "Monet" * 48)
    plt.close(fig)
    assert path.is_file() and len(path.name) <= 104


def test_a_failed_model_save_leaves_no_temporary_file(tmp_path):
    class FullDisk:
        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        runs.save_model(FullDisk(), tmp_path / "model.keras")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "dangling link", "fifo"])
def test_a_lock_that_is_not_a_regular_file_is_refused_in_one_line_and_nothing_is_created(
    tmp_path, kind
):
    """#31: a folder gave IsADirectoryError; a dangling link made the lock create its target
    outside the run folder; a FIFO held by a live run read as not live."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = run_dir / runs.LOCK_FILE
    outside = tmp_path / "elsewhere.lock"
    if kind == "folder":
        lock.mkdir()
    elif kind == "dangling link":
        lock.symlink_to(outside)
    else:
        os.mkfifo(lock)
    with pytest.raises(runs.RunLockError, match="Cannot take the lock") as refused:
        runs.hold_run(run_dir).__enter__()
    assert "\n" not in str(refused.value) and "remove .lock" in str(refused.value)
    assert not outside.exists()
    assert runs.run_is_live(run_dir) is False


def test_a_lock_in_a_folder_that_cannot_be_written_is_refused_in_one_line(tmp_path, monkeypatch):
    """An immutable run folder gave PermissionError (simulated: root may write anywhere)."""

    def refused(*_args, **_kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(runs.os, "open", refused)
    with pytest.raises(runs.RunLockError, match="Operation not permitted"):
        runs.hold_run(tmp_path).__enter__()


def test_files_written_for_a_run_get_what_the_umask_gives_so_a_teacher_can_read_them(tmp_path):
    """#31: metrics.json, the report and status.json were -rw------- under umask 022."""
    written = runs.write_json(tmp_path / "metrics.json", {"accuracy": 1.0})
    assert written.stat().st_mode & 0o777 == paths.FILE_MODE
    assert paths.FILE_MODE == 0o666 & ~paths.UMASK
