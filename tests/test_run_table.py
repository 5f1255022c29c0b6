"""make runs: one table of a folder's runs, from metrics.json and status.json only."""

import csv
import io
import json
import os
import subprocess
import sys

from utils import paths, run_notebook, run_table, runs

DEFAULTS = {"image_size": 64, "model": "cnn", "num_epochs": 15, "run_name": "", "verbose": 2}


def finished_run(out, name, accuracy, macro_f1, seconds, **changed):
    """A finished run folder as the notebook leaves it (only the files the table reads)."""
    run_dir = out / name
    run_dir.mkdir(parents=True)
    used = DEFAULTS | {"run_name": name, "verbose": 0} | changed
    runs.write_json(
        run_dir / "metrics.json",
        {
            "accuracy": accuracy,
            "macro_f1": macro_f1,
            "seconds": {"training": seconds, "loading": 1.0},
            "evaluated_on": "validation split",
            "parameters": used,
        },
    )
    runs.write_status(run_dir, runs.FINISHED)
    return run_dir


def test_each_run_gives_its_status_changes_scores_and_minutes(tmp_path):
    finished_run(tmp_path, "b-large", 0.5, 0.45, 180.0, image_size=128, num_epochs=40)
    finished_run(tmp_path, "a-default", 0.25, 0.2, 30.0)
    failed = tmp_path / "c-failed"
    failed.mkdir()
    runs.mark_failed(failed, 7, "ValueError: no paintings")
    (tmp_path / "sweeps").mkdir()  # a sweep's summaries: not a run, not reported

    table = run_table.collect(tmp_path, DEFAULTS)

    assert table.unreadable == []
    assert [(r["run"], r["status"], r["changed"]) for r in table.rows] == [
        ("a-default", "finished", ""),
        ("b-large", "finished", "image_size=128, num_epochs=40"),
        ("c-failed", "failed", ""),
    ]
    assert table.rows[1]["accuracy"] == 0.5 and table.rows[1]["macro_f1"] == 0.45
    assert table.rows[1]["training_minutes"] == 3.0
    assert table.rows[2]["accuracy"] == ""


def test_a_running_run_whose_process_is_gone_says_so(tmp_path):
    live, dead = tmp_path / "live", tmp_path / "dead"
    live.mkdir()
    dead.mkdir()
    runs.write_status(live, runs.RUNNING, pid=os.getpid())
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    runs.write_status(dead, runs.RUNNING, pid=int(finished.stdout))

    with runs.hold_run(live):  # the lock, not the pid, says whether a run is live
        statuses = {r["run"]: r["status"] for r in run_table.collect(tmp_path, DEFAULTS).rows}
    assert statuses == {"live": "running", "dead": "died (its process is gone)"}
    runs.write_status(dead, runs.RUNNING, pid=os.getpid())  # a recycled pid
    statuses = {r["run"]: r["status"] for r in run_table.collect(tmp_path, DEFAULTS).rows}
    assert statuses["dead"] == "died (its process is gone)"


def test_runs_that_cannot_be_read_are_named_with_the_reason(tmp_path):
    finished_run(tmp_path, "good", 0.3, 0.3, 60.0)
    garbled = finished_run(tmp_path, "garbled", 0.3, 0.3, 60.0)
    (garbled / "metrics.json").write_text('{"accuracy": 0.3')
    incomplete = finished_run(tmp_path, "incomplete", 0.3, 0.3, 60.0)
    runs.write_json(incomplete / "metrics.json", {"accuracy": 0.3})
    lost = finished_run(tmp_path, "lost", 0.3, 0.3, 60.0)
    (lost / "metrics.json").unlink()
    unmarked = tmp_path / "unmarked"
    unmarked.mkdir()
    (unmarked / run_notebook.REQUEST_FILE).write_text("{}")

    table = run_table.collect(tmp_path, DEFAULTS)

    assert [r["run"] for r in table.rows] == ["good"]
    reasons = {folder.name: reason for folder, reason in table.unreadable}
    assert reasons == {
        "garbled": "metrics.json is not valid JSON",
        "incomplete": "metrics.json lacks or garbles 'parameters'",
        "lost": "finished, but metrics.json is missing",
        "unmarked": "no status.json",
    }


def test_csv_keeps_full_numbers_and_markdown_rounds_and_escapes(tmp_path):
    finished_run(tmp_path, "run", 0.123456, 0.5, 90.0, data_dir="data/a|b")
    rows = run_table.collect(tmp_path, DEFAULTS).rows

    parsed = list(csv.DictReader(io.StringIO(run_table.to_csv(rows))))
    markdown = run_table.to_markdown(rows).splitlines()

    assert parsed[0]["accuracy"] == "0.123456" and parsed[0]["changed"] == "data_dir=data/a|b"
    assert markdown[0] == "| " + " | ".join(run_table.COLUMNS) + " |"
    assert markdown[2] == (
        "| run | finished | data_dir=data/a\\|b | 12.3% | 0.500 | 1.5 | validation split |"
    )


def test_make_runs_writes_csv_and_markdown_and_names_the_unreadable(tmp_path):
    finished_run(tmp_path, "20261203-090000-cnn-64px", 0.4, 0.35, 120.0, image_size=32)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "status.json").write_text("not json")

    result = subprocess.run(
        ["make", "--no-print-directory", "runs", f"OUT={tmp_path}"],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "| 20261203-090000-cnn-64px | finished | image_size=32 | 40.0% | 0.350 | 2.0 |" in (
        result.stdout
    )
    assert f"Could not read {tmp_path / 'broken'}: status.json is not valid JSON" in result.stdout
    assert (
        (tmp_path / "runs.md")
        .read_text()
        .splitlines()[2]
        .startswith("| 20261203-090000-cnn-64px |")
    )
    rows = list(csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text())))
    assert [row["run"] for row in rows] == ["20261203-090000-cnn-64px"]


def test_make_runs_on_a_missing_folder_says_how_runs_are_made(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "utils.run_table", str(tmp_path / "nowhere")],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "make run creates" in result.stdout


def test_the_table_reads_the_real_notebook_defaults(tmp_path):
    defaults = {
        name: declared.default
        for name, declared in run_table.parameters.declared(run_notebook.NOTEBOOK).items()
    }
    finished_run(tmp_path, "run", 0.3, 0.3, 6.0)
    metrics_path = tmp_path / "run" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["parameters"] = defaults | {"run_name": "run", "run_folder": "out/run", "seed": 7}
    metrics_path.write_text(json.dumps(metrics))

    assert run_table.collect(tmp_path, defaults).rows[0]["changed"] == "seed=7"
