"""The papermill runner: parameter parsing, refusal of typos, and its own run folder."""

import ast
import base64
import errno
import json
import logging
import os
import re
import resource
import signal
import subprocess
import sys
import time
import types

import nbformat
import pytest
import yaml
from conftest import write_notebook

from utils import kernel_stop, parameters, run_notebook, runs, sample_data

HOSTILE = '"; __import__("os").system("touch pwned"); "'


def test_unknown_names_and_wrong_types_stop_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    assert run_notebook.main(["-p", "num_epoch", "3"]) == 2
    assert "Unknown parameter(s): num_epoch" in capsys.readouterr().err
    for value in ("abc", "6.5", "1e3"):
        assert run_notebook.main(["-p", "image_size", value]) == 2
        assert "image_size is declared int" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["-p", "learning_rate", "-1e-3"], "learning_rate must be a positive number"),
        (["-p", "learning_rate", "-inf"], "learning_rate must be a positive number"),
        (["-p", "image_size", "-5"], "image_size must lie between 8 and 1024"),
        (["-p", "image_size", "32", "-p", "crop_size", "64"], "crop_size must be 0 (off)"),
        (["-p", "model", "resnet"], "model must be one of"),
        # once a TypeError where the epochs were computed, after the data had loaded
        (["-p", "num_epochs", "99999999999999999999999"], "num_epochs must lie between"),
        (["-f", "params/transfer-quick.yaml", "-p", "weights", "/etc/passwd"], "installed package"),
    ],
)
def test_range_errors_and_negative_numbers_stop_in_the_runner_before_any_kernel(
    tmp_path, monkeypatch, capsys, arguments, named
):
    """A negative number is a value, not an option; a value out of range is refused by the
    runner itself, in a second, before a kernel starts or a folder is made."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))

    def no_kernel(*_):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(run_notebook, "execute", no_kernel)
    assert run_notebook.main(arguments) == 2
    message = capsys.readouterr().err
    assert message.startswith("Invalid parameters:") and named in message
    assert not (tmp_path / "out").exists()


def test_parameter_pairs_take_the_two_words_after_p_whatever_they_look_like():
    pairs, rest = run_notebook.parameter_pairs(
        ["-p", "learning_rate", "-inf", "-f", "a.yaml", "--parameters", "seed", "-1"]
    )
    assert pairs == [["learning_rate", "-inf"], ["seed", "-1"]]
    assert rest == ["-f", "a.yaml"]
    assert run_notebook.parameter_pairs(["-p", "seed"]) == ([], ["-p", "seed"])


def test_checking_settings_loads_no_tensorflow():
    """The runner checks ranges and choices without TensorFlow, which takes seconds to load."""
    code = (
        "import sys; from utils import parameters, run_notebook; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_checks_read_only_the_settings_the_runner_knows_they_read():
    """``parameters.CHECKED`` lists every setting ``validate`` reads, so that the runner
    knows when a notebook declares enough of them to be checked before it runs."""
    defaults = {
        name: declaration.default
        for name, declaration in parameters.declared(run_notebook.NOTEBOOK).items()
    }

    read = set()

    class Recording(dict):
        def __getitem__(self, name):
            read.add(name)
            return super().__getitem__(name)

    parameters.validate(Recording(defaults | {"run_name": "named"}))
    assert read == set(parameters.CHECKED)


def test_a_parameters_file_cannot_run_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    hostile = tmp_path / "hostile.yaml"
    encoded = base64.b64encode(HOSTILE.encode()).decode()
    hostile.write_text(f"suspected_artist: !!binary {encoded}\n")
    assert run_notebook.main(["-f", str(hostile)]) == 2
    message = capsys.readouterr().err
    assert "suspected_artist is declared str" in message and "bytes" in message
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out").exists()


def test_any_string_reaches_the_notebook_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    notebook = write_notebook(
        tmp_path / "echo.ipynb",
        'run_name: str = ""\ntext: str = ""',
        "from pathlib import Path\nPath('received.txt').write_text(text, encoding='utf-8')",
    )
    tricky = HOSTILE + "\n'single' \"double\" \\backslash\\ \u00e9 \t tab \\n not a newline"
    params = tmp_path / "tricky.yaml"
    params.write_text(yaml.safe_dump({"text": tricky, "run_name": "echo"}), encoding="utf-8")
    assert run_notebook.main(["--notebook", str(notebook), "-f", str(params)]) == 0
    assert (tmp_path / "received.txt").read_text(encoding="utf-8") == tricky
    assert not (tmp_path / "pwned").exists()


def test_the_notebook_declares_every_documented_parameter():
    """The parameter table of docs/parameters.md and the parameters cell name the same ones."""
    declared = parameters.declared(run_notebook.NOTEBOOK)
    readme = (run_notebook.paths.PROJECT_ROOT / "docs/parameters.md").read_text(encoding="utf-8")
    section = readme.split("\n## Parameters\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"(?m)^\| `(\w+)` \|", section)
    assert len(documented) == len(set(documented))
    assert set(declared) == set(documented)
    assert declared["data_dir"].default == ""


def test_params_files_only_use_declared_names():
    declared = parameters.declared(run_notebook.NOTEBOOK)
    for params_file in sorted((run_notebook.paths.PROJECT_ROOT / "params").glob("*.yaml")):
        assert parameters.collect([str(params_file)], [], declared)


def tiny_notebook(path):
    return write_notebook(
        path,
        'run_name = ""\nrun_folder = ""\nmodel = "cnn"\nimage_size = 8',
        "from utils import runs\n"
        "run_dir = runs.open_run_dir(run_folder)\n"
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


def test_only_make_resume_lets_the_notebook_restore_a_checkpoint(tmp_path, monkeypatch, capsys):
    """``resume`` is true in a resumed run alone: a fresh run and a sweep's fresh run
    (``--start``, which sweeps used to start with ``--resume``) train from their first epoch,
    and ``-p resume`` is refused."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = write_notebook(
        tmp_path / "resume.ipynb",
        'run_name = ""\nrun_folder = ""\nresume = False',
        "from utils import runs\n"
        "run_dir = runs.open_run_dir(run_folder)\n"
        "with open(run_dir / 'resume.txt', 'a') as seen:\n"
        "    seen.write(f'{resume} ')\n"
        "runs.track_status(run_dir)\n"
        "runs.mark_interrupted(run_dir, 3)",
    )
    assert run_notebook.main(["--notebook", str(notebook), "-p", "resume", "True"]) == 2
    assert "resume is set by make resume" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert run_notebook.main(["--notebook", str(notebook), "-p", "run_name", "fresh"]) == 0
    run_dir = tmp_path / "out" / "fresh"
    assert run_notebook.main(["--notebook", str(notebook), "--resume", str(run_dir)]) == 0
    assert (run_dir / "resume.txt").read_text() == "False True "
    declared = parameters.declared(notebook)
    swept = run_notebook.new_run_dir({"run_name": "swept"}, declared)
    assert run_notebook.main(["--notebook", str(notebook), "--start", str(swept)]) == 0
    assert (swept / "resume.txt").read_text() == "False "


def test_a_failing_run_reports_and_keeps_its_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    args = ["--notebook", str(notebook), "-p", "run_name", "bad name"]
    with pytest.raises(SystemExit, match="run_name"):
        run_notebook.main(args)
    args = ["--notebook", str(notebook), "-p", "run_name", "ok", "-p", "image_size", "3"]
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[-1].source += "\n1 / 0"
    nbformat.write(nb, notebook)
    assert run_notebook.main(args) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert (tmp_path / "out" / "ok" / "notebook.ipynb").is_file()
    status = runs.read_status(tmp_path / "out" / "ok")
    assert status["status"] == runs.FAILED and "ZeroDivisionError" in status["error"]


def tracked_notebook(path, last_cell: str):
    """A notebook that tracks its status like the real one, then runs ``last_cell``."""
    notebook = write_notebook(
        path,
        'run_name = ""\nrun_folder = ""\nmodel = "cnn"\nimage_size = 8',
        "from utils import runs\n"
        "run_dir = runs.open_run_dir(run_folder)\n"
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


def test_an_unusable_out_folder_is_named(tmp_path, monkeypatch):
    blocker = tmp_path / "out-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(blocker / "out"))
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    with pytest.raises(SystemExit, match=r"Cannot create a run folder under .*out-is-a-file"):
        run_notebook.main(["--notebook", str(notebook)])


RUNNER = [sys.executable, "-m", "utils.run_notebook"]


def start_runner(notebook, out, run_name, new_session=False, hold_at=""):
    held = {run_notebook.HOLD_AT: hold_at} if hold_at else {}
    return subprocess.Popen(
        [*RUNNER, "--notebook", str(notebook), "-p", "run_name", run_name],
        env=os.environ | {"CNN_ARTISTS_OUT": str(out)} | held,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def wait_for(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT", "SIGTERM", "Ctrl-C to the process group"],
)
def test_a_stop_signal_interrupts_the_run_and_says_how_to_resume(tmp_path, signum, to_group):
    notebook = tracked_notebook(
        tmp_path / "slow.ipynb",
        "import time\n(run_dir / 'started').touch()\nfor _ in range(3000):\n    time.sleep(0.1)",
    )
    runner = start_runner(notebook, tmp_path / "out", "slow", new_session=to_group)
    run_dir = tmp_path / "out" / "slow"
    wait_for(lambda: (run_dir / "started").exists())
    if to_group:
        os.killpg(runner.pid, signum)
    else:
        runner.send_signal(signum)
    _, err = runner.communicate(timeout=60)  # a guard against hanging only
    assert runner.returncode == run_notebook.INTERRUPTED_EXIT_CODE
    status = runs.read_status(run_dir)
    assert status["status"] == runs.INTERRUPTED
    assert status["resume"] == f"make resume RUN={run_dir}"
    assert f"Resume with: make resume RUN={run_dir}" in err.strip().splitlines()[-1]


def test_resume_refuses_finished_and_live_runs(tmp_path, monkeypatch, capsys):
    """A run is live while its process holds the folder's lock; a recycled process id that
    happens to exist does not make a dead run live."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    resumed = []
    monkeypatch.setattr(
        run_notebook,
        "execute",
        lambda values, notebook, declared, run_dir, held, resume: (
            resumed.append((held, resume)) or run_notebook.RunOutcome(run_dir)
        ),
    )
    run_dir = runs.create_run_dir("done", tmp_path / "out")
    runs.write_json(run_dir / run_notebook.REQUEST_FILE, {"parameters": {}})
    runs.write_status(run_dir, runs.FINISHED)
    assert run_notebook.main(["--resume", str(run_dir)]) == 2
    assert "already finished" in capsys.readouterr().err
    runs.write_status(run_dir, runs.RUNNING, pid=4242)
    with runs.hold_run(run_dir):
        assert run_notebook.main(["--resume", str(run_dir)]) == 2
    assert "is already running (process 4242)" in capsys.readouterr().err
    runs.write_status(run_dir, runs.RUNNING, pid=os.getpid())  # alive, but not this run's
    assert run_notebook.main(["--resume", str(run_dir)]) == 0
    assert resumed == [(True, True)]
    assert run_notebook.main(["--resume", str(tmp_path)]) == 2
    assert "not a run folder made by make run" in capsys.readouterr().err


def test_two_resumes_of_one_run_cannot_work_at_once(tmp_path, monkeypatch, capsys):
    """Two ``make resume`` of one folder used to train side by side and corrupt its log."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    run_dir = runs.create_run_dir("twice", tmp_path / "out")
    runs.write_json(run_dir / run_notebook.REQUEST_FILE, {"parameters": {}})
    runs.write_status(run_dir, runs.INTERRUPTED)
    script = (
        "import sys, time; from pathlib import Path; from utils import runs\n"
        "with runs.hold_run(Path(sys.argv[1])):\n"
        "    print('holding', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert runs.run_is_live(run_dir)
        assert run_notebook.main(["--resume", str(run_dir)]) == 2
        assert "already running" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert not runs.run_is_live(run_dir)  # a killed holder leaves no lock behind


@pytest.mark.parametrize("request_text", ["[1, 2]", '{"parameters": [1]}', '"text"'])
def test_resume_of_a_damaged_request_file_says_so_in_one_line(
    tmp_path, monkeypatch, capsys, request_text
):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    run_dir = runs.create_run_dir("damaged", tmp_path / "out")
    (run_dir / run_notebook.REQUEST_FILE).write_text(request_text)
    runs.write_status(run_dir, runs.INTERRUPTED)
    assert run_notebook.main(["--resume", str(run_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert "does not hold a run's parameters" in error and "\n" not in error


def test_a_full_disk_keeps_the_last_complete_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    nb = nbformat.read(notebook, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(f"x = {i}") for i in range(4)]
    nbformat.write(nb, notebook)
    real_write_bytes = runs.write_bytes
    saves = []

    def fill_up(path, data):
        if path.name == "notebook.ipynb":
            saves.append(path)
            if len(saves) > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(path, data)

    monkeypatch.setattr(runs, "write_bytes", fill_up)
    assert run_notebook.main(["--notebook", str(notebook), "-p", "run_name", "full"]) == 1
    run_dir = tmp_path / "out" / "full"
    assert "no space left on the disk that holds" in capsys.readouterr().err
    nbformat.read(run_dir / "notebook.ipynb", as_version=4)  # complete, valid JSON
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("suspected_artist", "Renior", "did you mean 'Renoir'?"),
        ("painting", "no/such/painting.jpg", "does not exist"),
    ],
)
def test_a_misspelt_artist_or_a_missing_painting_stops_before_training(
    tmp_path, monkeypatch, capsys, setting, value, named
):
    """Both used to be found only in section 13, after the whole training."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    data = sample_data.generate(tmp_path / "tiny", train_per_class=2, val_per_class=1)
    arguments = ["-p", "data_dir", str(data), "-p", setting, value, "-p", "run_name", "typo"]
    assert run_notebook.main(arguments) == 1
    assert named in capsys.readouterr().err
    run_dir = tmp_path / "out" / "typo"
    assert runs.read_status(run_dir)["status"] == runs.FAILED
    assert not (run_dir / "training_log.csv").exists() and not (run_dir / "model.keras").exists()


def test_a_file_size_limit_fails_the_run_in_one_line_with_its_status_recorded(tmp_path):
    """``ulimit -f`` makes a write past the limit fail with EFBIG, as a full disk fails with
    ENOSPC: here the executed notebook (1.5 MB of output) outgrows a 1 MB limit. The runner
    names the limit in one line, without the kernel's sqlite traceback, and status.json says
    failed."""
    notebook = tracked_notebook(tmp_path / "big.ipynb", "print('x' * 1_500_000)")
    limit = 1_000_000
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    run = subprocess.run(
        [*RUNNER, "--notebook", str(notebook), "-p", "run_name", "big"],
        capture_output=True,
        text=True,
        env=os.environ | {"CNN_ARTISTS_OUT": str(tmp_path / "out")},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard)),
        timeout=300,
    )
    assert run.returncode == 1
    assert "The run failed: a file in " in run.stderr
    assert "would grow past this process's file-size limit (ulimit -f)" in run.stderr
    assert "Traceback" not in run.stderr
    status = runs.read_status(tmp_path / "out" / "big")
    assert status["status"] == runs.FAILED and "ulimit -f" in status["error"]


def test_a_failure_the_notebook_could_not_record_is_recorded_by_the_runner(
    tmp_path, monkeypatch, capsys
):
    """The disk is full: the notebook's own status write fails, and so does the atomic
    write of the runner's (no room for its temporary file). status.json is overwritten in
    place instead, so the run does not stay marked running; the runner used to raise."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    last_cell = (
        "def full(*args, **kwargs):\n"
        "    raise OSError(28, 'No space left on device')\n"
        "runs.write_status = full\n"
        "raise ValueError('the disk is full')"
    )
    notebook = tracked_notebook(tmp_path / "full.ipynb", last_cell)
    real_write_bytes = runs.write_bytes

    def no_room_for_status(path, data):
        if path.name == runs.STATUS_FILE:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(path, data)

    monkeypatch.setattr(runs, "write_bytes", no_room_for_status)
    assert run_notebook.main(["--notebook", str(notebook), "-p", "run_name", "full"]) == 1
    status = runs.read_status(tmp_path / "out" / "full")
    assert status["status"] == runs.FAILED and "the disk is full" in status["error"]
    assert "The run failed in cell 4: ValueError: the disk is full" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        ("OSError(28, 'No space left on device')", "no space left on the disk that holds"),
        ("OSError(27, 'File too large')", "file-size limit (ulimit -f)"),
    ],
)
def test_a_cell_that_finds_the_disk_full_says_what_the_docs_say(
    tmp_path, monkeypatch, capsys, raised, said
):
    """#31: a cell's full disk read "OSError: [Errno 28] No space left on device", where the
    docs promise "no space left on the disk that holds out/..."."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    notebook = tracked_notebook(tmp_path / "full.ipynb", f"raise {raised}")
    assert run_notebook.main(["--notebook", str(notebook), "-p", "run_name", "full"]) == 1
    printed = capsys.readouterr().err
    assert "The run failed in cell 4: " in printed and said in printed
    assert "Errno" not in printed
    status = runs.read_status(tmp_path / "out" / "full")
    assert status["status"] == runs.FAILED and said in status["error"]


def test_only_a_no_room_errno_becomes_the_no_room_sentence(tmp_path):
    assert runs.cell_error_message("ValueError", "bad value", tmp_path) == "ValueError: bad value"
    assert runs.cell_error_message("OSError", "[Errno 2] No such file", tmp_path).startswith(
        "OSError: [Errno 2]"
    )
    assert "no space left" in runs.cell_error_message("OSError", "[Errno 122] Quota", tmp_path)


def signal_when_held(runner, stage: str) -> list[str]:
    """Send SIGINT once the runner says it is held at ``stage`` (``$CNN_ARTISTS_HOLD_AT``);
    everything it wrote to stderr. No delay is guessed: the runner waits for the signal."""
    lines = []
    for line in runner.stderr:
        lines.append(line)
        if line.strip() == f"held at {stage}":
            runner.send_signal(signal.SIGINT)
            break
    lines += runner.stderr.readlines()
    return lines


def test_a_stop_signal_while_the_runner_starts_is_one_line(tmp_path):
    """Ctrl-C while papermill is still being imported used to print a 75-line traceback."""
    notebook = tracked_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    runner = start_runner(notebook, tmp_path / "out", "early", hold_at="import")
    stderr = signal_when_held(runner, "import")
    assert runner.wait(timeout=120) == 130
    assert [line.strip() for line in stderr if line.strip()] == [
        "held at import",
        "SIGINT: stopped before the notebook started; nothing ran.",
    ]
    assert not (tmp_path / "out" / "early").exists()


@pytest.mark.parametrize(
    "stage",
    ["kernel", "cell-0", "cell-3"],
    ids=["while the kernel starts", "kernel started, no cell run", "between two cells"],
)
def test_a_stop_signal_at_any_stage_of_start_up_stops_the_run_in_one_line(tmp_path, stage):
    """The runner waits at ``stage`` until the signal has come, so the window is exact. At
    cell-3 the notebook has recorded its kernel's pid and the 60-second cell is next: a
    SIGINT passed on to the idle kernel there was ignored, and that cell ran to its end
    (CI failed one run in a few). Now no cell starts after a stop signal."""
    notebook = tracked_notebook(
        tmp_path / "slow.ipynb", "import time\n(run_dir / 'started').touch()\ntime.sleep(60)"
    )
    runner = start_runner(notebook, tmp_path / "out", "starting", hold_at=stage)
    stderr = "".join(signal_when_held(runner, stage))
    assert runner.wait(timeout=120) == 130, stderr
    assert "Traceback" not in stderr and "IPKernelApp" not in stderr, stderr
    run_dir = tmp_path / "out" / "starting"
    assert runs.read_status(run_dir)["status"] == runs.INTERRUPTED
    assert not (run_dir / "started").exists()
    assert f"Resume with: make resume RUN={run_dir}" in stderr.strip().splitlines()[-1]


def test_a_stop_signal_that_reaches_the_idle_kernel_stops_its_next_cell(tmp_path):
    """ipykernel ignores SIGINT between cells. The runner's kernels keep it instead
    (``utils.kernel_stop``), so a Ctrl-C passed on just as a cell is sent still stops that
    cell. The third cell calls the handler an idle kernel runs on SIGINT (ipykernel restores
    it after each cell); the fourth must not run its body."""
    notebook = tracked_notebook(
        tmp_path / "pending.ipynb",
        "import signal\nget_ipython().kernel.saved_sigint_handler(signal.SIGINT, None)",
    )
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("(run_dir / 'ran').touch()"))
    nbformat.write(nb, notebook)
    runner = start_runner(notebook, tmp_path / "out", "pending")
    _, stderr = runner.communicate(timeout=120)
    assert runner.returncode == 130, stderr
    run_dir = tmp_path / "out" / "pending"
    assert runs.read_status(run_dir)["status"] == runs.INTERRUPTED
    assert not (run_dir / "ran").exists()


def test_the_pending_interrupt_stops_exactly_one_cell():
    """``kernel_stop``'s transformer, as IPython uses it: after a SIGINT the next cell is
    replaced by one that raises ``KeyboardInterrupt``; the cell after it runs as written."""
    shell = types.SimpleNamespace(ast_transformers=[])
    previous = signal.getsignal(signal.SIGINT)
    try:
        pending = kernel_stop.install(shell)
        cell = ast.parse("x = 1")
        assert pending.visit(cell) is cell
        signal.raise_signal(signal.SIGINT)
        stopped = pending.visit(ast.parse("x = 1"))
        with pytest.raises(KeyboardInterrupt):
            exec(compile(stopped, "<cell>", "exec"), {})
        assert pending.visit(cell) is cell
        assert shell.ast_transformers == [pending]
        # A stopped run's kernel shuts down at once; ipykernel's ZMQError about a socket it
        # had closed came through tornado's logger as a traceback (one run in a few).
        assert logging.getLogger("tornado").getEffectiveLevel() == logging.CRITICAL
    finally:
        signal.signal(signal.SIGINT, previous)
        logging.getLogger("tornado").setLevel(logging.NOTSET)


def test_resume_with_a_folder_where_the_lock_goes_stops_in_one_line(tmp_path, monkeypatch, capsys):
    """#31: ``make resume`` when ``.lock`` is a folder gave IsADirectoryError."""
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    run_dir = tmp_path / "out" / "stopped"
    run_dir.mkdir(parents=True)
    (run_dir / run_notebook.REQUEST_FILE).write_text("parameters: {}\n")
    (run_dir / runs.LOCK_FILE).mkdir()

    def no_kernel(*_):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(run_notebook, "execute", no_kernel)
    assert run_notebook.main(["--resume", str(run_dir)]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("Cannot take the lock") and "\n" not in message
