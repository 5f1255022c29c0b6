"""A sweep runs every combination, records a failed run as failed, and summarises."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import write_notebook

from utils import parameters, run_notebook, runs, sweep


def fake_notebook(path):
    """A notebook that writes metrics.json, and fails on purpose when model == "broken"."""
    return write_notebook(
        path,
        'run_name = ""\nrun_folder = ""\nmodel = "cnn"\nimage_size = 8\nnum_epochs = 1',
        "from utils import runs\n"
        "run_dir = runs.open_run_dir(run_folder)\n"
        "assert model != 'broken', 'this run fails on purpose'\n"
        "runs.write_json(run_dir / 'metrics.json', {'accuracy': image_size / 100, "
        "'macro_f1': image_size / 200, 'seconds': {'training': float(num_epochs)}})",
    )


def test_sweep_with_a_failing_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    config = tmp_path / "grid.yaml"
    config.write_text(
        "name: tiny\nparameters:\n  num_epochs: 3\n"
        "grid:\n  image_size: [10, 20]\n  model: [cnn, broken]\n"
    )
    summary_dir = sweep.run_sweep(config, fake_notebook(tmp_path / "fake.ipynb")).summary_dir

    assert summary_dir == tmp_path / "out" / "sweeps" / "tiny"
    with open(summary_dir / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["image_size"], r["model"], r["status"]) for r in rows] == [
        ("10", "cnn", "ok"),
        ("10", "broken", "failed"),
        ("20", "cnn", "ok"),
        ("20", "broken", "failed"),
    ]
    assert [r["accuracy"] for r in rows] == ["0.1", "", "0.2", ""]
    assert rows[0]["training_seconds"] == "3.0"
    assert "fails on purpose" in rows[1]["error"]
    assert (tmp_path / "out" / "tiny-image_size10-modelcnn" / "notebook.ipynb").is_file()
    assert (tmp_path / "out" / "tiny-image_size10-modelbroken" / "notebook.ipynb").is_file()
    assert (summary_dir / "summary.png").read_bytes()[:4] == b"\x89PNG"


def read_rows(summary_dir):
    with open(summary_dir / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_parallel_sweep_gives_the_rows_of_a_sequential_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = fake_notebook(tmp_path / "fake.ipynb")
    config = tmp_path / "grid.yaml"
    config.write_text("name: par\ngrid:\n  image_size: [10, 20, 30]\n  model: [cnn, broken]\n")
    one_by_one = read_rows(sweep.run_sweep(config, notebook).summary_dir)
    in_parallel = read_rows(sweep.run_sweep(config, notebook, jobs=3).summary_dir)

    def without_folders(rows):
        return [{k: v for k, v in r.items() if k not in ("run_dir", "error")} for r in rows]

    assert without_folders(in_parallel) == without_folders(one_by_one)
    assert [r["status"] for r in in_parallel] == ["ok", "failed"] * 3
    assert all("fails on purpose" in r["error"] for r in in_parallel[1::2])
    assert (tmp_path / "out" / "par-image_size30-modelcnn-2" / "runner.log").is_file()


def slow_notebook(path):
    """A notebook whose one cell marks the run running, then sleeps for two minutes."""
    return write_notebook(
        path,
        'run_name = ""\nrun_folder = ""\nimage_size = 8',
        "import time\nfrom utils import runs\n"
        "runs.track_status(runs.open_run_dir(run_folder))\ntime.sleep(120)",
    )


def stop_when_running(out, count, signum=signal.SIGTERM, pid=None):
    """Send ``signum`` (to this process, or ``pid``) once ``count`` runs are running."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        folders = list(out.glob("slow-*"))
        pids = [runs.read_status(folder).get("pid") for folder in folders]
        if len(folders) == count and all(pids):
            break
        time.sleep(0.2)
    os.kill(pid or os.getpid(), signum)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stop_signal_stops_the_sweep_and_starts_no_new_run(tmp_path, monkeypatch, jobs):
    """One SIGTERM stops the running notebooks, resumable, and starts no other: runs that
    never started get no folder, and their rows say so. (A sequential sweep used to start
    the next run after each signal, and a parallel one made folders for runs never started.)"""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    slow = slow_notebook(tmp_path / "slow.ipynb")
    config = tmp_path / "grid.yaml"
    config.write_text("name: slow\ngrid:\n  image_size: [1, 2, 3]\n")
    stopper = threading.Thread(target=stop_when_running, args=(tmp_path / "out", jobs))
    stopper.start()
    started = time.monotonic()
    result = sweep.run_sweep(config, slow, jobs=jobs)
    stopper.join()
    assert time.monotonic() - started < 100
    assert result.stopped_by == signal.SIGTERM
    statuses = [(r["image_size"], r["status"]) for r in read_rows(result.summary_dir)]
    expected = ["interrupted"] * jobs + [sweep.NOT_STARTED] * (3 - jobs)
    assert statuses == list(zip(["1", "2", "3"], expected, strict=True))
    folders = sorted((tmp_path / "out").glob("slow-*"))
    assert len(folders) == jobs
    for folder in folders:
        status = runs.read_status(folder)
        assert status["status"] == "interrupted" and "make resume" in status["resume"]


def test_an_interrupted_sweep_exits_130_and_says_so(tmp_path):
    """``make sweep`` fails when the sweep was stopped: 130 after Ctrl-C (SIGINT)."""
    out = tmp_path / "out"
    slow = slow_notebook(tmp_path / "slow.ipynb")
    config = tmp_path / "grid.yaml"
    config.write_text("name: slow\ngrid:\n  image_size: [1, 2]\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "utils.sweep", str(config), "--notebook", str(slow)],
        env=os.environ | {"CNN_ARTISTS_OUT": str(out)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop_when_running(out, 1, signal.SIGINT, process.pid)
    stdout, stderr = process.communicate(timeout=100)
    assert process.returncode == 130
    assert "Sweep interrupted" in stderr and "Sweep summary" not in stdout
    assert sweep.NOT_STARTED in stderr


def test_a_stopped_parallel_sweep_starts_no_new_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    runner = sweep.ChildRunner({})
    runner.stop()
    declared = {"run_name": parameters.Declared("str", ""), "model": parameters.Declared("str", "")}
    declared |= {"image_size": parameters.Declared("int", 8)}
    outcome = runner({"run_name": "late", "model": "cnn"}, tmp_path / "unused.ipynb", declared)
    assert outcome is None
    assert not (tmp_path / "out").exists()


def test_the_chart_says_which_data_the_runs_saw():
    def config(fixed, grid):
        return sweep.SweepConfig("s", fixed, grid)

    assert sweep.data_label(config({}, {"image_size": [32]})) == "synthetic sample"
    real = config({"data_dir": "data/impressionist"}, {"image_size": [32]})
    assert sweep.data_label(real) == "real paintings, impressionist"
    both = config({}, {"data_dir": ["", "../x/subset"]})
    assert sweep.data_label(both) == "synthetic sample and real paintings, subset"


def test_each_job_gets_its_share_of_the_threads():
    environment = sweep.job_environment(jobs=2, cpus=8)
    assert environment["TF_NUM_INTRAOP_THREADS"] == "4" == environment["OMP_NUM_THREADS"]
    assert sweep.job_environment(jobs=4, cpus=2)["TF_NUM_INTEROP_THREADS"] == "1"


def test_unknown_parameter_in_a_sweep_is_refused(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("grid:\n  image_sise: [32]\n")
    with pytest.raises(parameters.ParameterError, match="image_sise"):
        sweep.load_config(config, parameters.declared(run_notebook.NOTEBOOK))


@pytest.mark.parametrize(
    "content",
    [
        "grid:\n  suspected_artist: [!!binary IjsgX19pbXBvcnRfXw==]\n",
        "parameters:\n  image_size: !!set {1, 2}\ngrid:\n  model: [cnn]\n",
        "parameters: [1]\ngrid:\n  model: [cnn]\n",
        "grid:\n  image_size: [32, '64']\n",
        "grid: [image_size]\n",
        "grid:\n  model: !!python/object/apply:os.system [touch pwned]\n",
        "grid:\n  model: [cnn\n",
        "just text\n",
    ],
)
def test_hostile_or_malformed_sweep_files_are_refused(tmp_path, monkeypatch, capsys, content):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "hostile.yaml"
    config.write_text(content)
    assert sweep.main([str(config)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(str(config)) and "\n" not in message
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", ["../../escape", "/tmp/elsewhere", ".hidden"])
def test_a_sweep_name_is_a_folder_name_never_a_path(tmp_path, monkeypatch, capsys, name):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    config = tmp_path / "escape.yaml"
    config.write_text(f"name: {json.dumps(name)}\ngrid:\n  model: [cnn]\n")
    assert sweep.main([str(config)]) == 2
    message = capsys.readouterr().err.strip()
    assert "the sweep's name" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["escape.yaml"]


def test_combinations_and_run_names():
    grid = {"image_size": [32, 64], "model": ["shallow", "cnn"]}
    assert sweep.combinations(grid) == [
        {"image_size": 32, "model": "shallow"},
        {"image_size": 32, "model": "cnn"},
        {"image_size": 64, "model": "shallow"},
        {"image_size": 64, "model": "cnn"},
    ]
    assert sweep.run_name_for("s", {"data_dir": "a/b", "lr": 0.01}) == "s-data_dira_b-lr0.01"


def test_shipped_sweep_files_are_valid():
    declared = parameters.declared(run_notebook.NOTEBOOK)
    files = sorted((run_notebook.paths.PROJECT_ROOT / "sweeps").glob("*.yaml"))
    assert files
    defaults = {name: d.default for name, d in declared.items()}
    for path in files:
        config = sweep.load_config(path, declared)
        for combination in sweep.combinations(config.grid):
            parameters.validate(defaults | config.fixed | combination)


def test_an_unwritable_out_folder_is_named_in_one_line(tmp_path, monkeypatch, capsys):
    """Like a read-only mount, but refused to root too: the out folder lies under a file."""
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "a-file" / "out"))
    config = tmp_path / "grid.yaml"
    config.write_text("name: ro\ngrid:\n  image_size: [32]\n")
    assert sweep.main([str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert "Point CNN_ARTISTS_OUT at a writable folder" in error and "\n" not in error
