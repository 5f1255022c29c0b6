"""What both smoke-matrix modules share: the tiny data, how a case becomes a run of the
notebook through the runner, and the checks every finished run must pass.

``test_smoke_matrix.py`` (in ``make test``) runs one case per network a first user is likely
to pick, the awkward data and a teacher's own papermill call; ``test_smoke_matrix_more.py``
(in ``make test-all``) runs the other networks, 16-bit arithmetic, crops, frozen features,
disk mode and two devices.
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from notebook_outputs import (
    ARTIFACTS,
    TRAINED,
    check_artifacts_agree,
    check_trained_cells,
    output_text,
)

from utils import predict, run_notebook, runs, sample_data

TINY = {
    "image_size": 32,
    "num_epochs": 1,
    "batch_size": 8,
    "filters": 8,
    "head_epochs": 1,  # section 7's transfer learning: 1 epoch of the head, 1 of fine-tuning
    "fine_tune_epochs": 1,
    "verbose": 0,
}
# The pretrained network with its real ImageNet weights, through both phases of training.
TWO_PHASES = {"weights": "imagenet", "head_epochs": 1, "fine_tune_epochs": 1, "unfreeze_blocks": 2}
# Where neither matters, smaller images, and section 7's comparison trained as a head on
# frozen features alone (8 of a run's 38 s saved; the path was untested with a network from
# scratch). The cnn, ImageNet and awkward-data runs keep 32 px and both phases.
SMALLER = {"image_size": 24, "unfreeze_blocks": 0, "fine_tune_epochs": 0}
# distribute: mirrored runs on the processor split into two logical devices (utils.backend).
TWO_DEVICES = {"CNN_ARTISTS_CPU_DEVICES": "2"}


def out_dir() -> Path:
    """Where the test session's runs land (tests/conftest.py sets it)."""
    return Path(os.environ["CNN_ARTISTS_OUT"])


LONG_NAME = "Sargent" + "_" * 233


def awkward_data(tiny_data: Path, target: Path) -> Path:
    """The tiny set with what used to end runs after training: an unreadable image that
    sorts first, an artist missing from validation, and a 240-character artist name."""
    copy = Path(shutil.copytree(tiny_data, target / "data"))
    first = sorted((copy / "training" / "training" / "Cezanne").iterdir())[0]
    first.write_bytes(b"not an image")
    shutil.rmtree(copy / "validation" / "validation" / "Hassam")
    for split in ("training", "validation"):
        folder = copy / split / split
        (folder / "Sargent").rename(folder / LONG_NAME)
    return copy


def check_artifacts(run_dir: Path, expected: dict[str, object]) -> None:
    """Every file a run promises is there, and the run says it finished.

    The notebook itself reloads the saved model from disk to attribute a painting, so a
    finished run has shown that ``model.keras`` loads and predicts.
    """
    assert {p.name for p in run_dir.iterdir()} >= ARTIFACTS
    assert runs.read_status(run_dir)["status"] == runs.FINISHED
    grad_cams = list((run_dir / "grad_cam").glob("*.png"))
    assert grad_cams and all(p.stat().st_size > 1000 for p in grad_cams)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name, value in expected.items():
        assert metrics["parameters"][name] == value, name
    assert len(metrics["class_names"]) == len(sample_data.ARTISTS)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    report = json.loads((run_dir / "classification_report.json").read_text())
    assert [name for name in report if name in metrics["class_names"]] == metrics["class_names"]
    info = json.loads((run_dir / predict.MODEL_INFO).read_text())
    assert info["class_names"] == metrics["class_names"]


def run_name_of(case: dict[str, object]) -> str:
    """The run folder's name of a case: its settings' values, joined."""
    return f"smoke-{'-'.join(str(v) for v in case.values())}"


def as_arguments(settings: dict[str, object]) -> list[str]:
    """The runner's ``-p NAME VALUE`` arguments for ``settings``."""
    return [part for name, value in settings.items() for part in ("-p", name, str(value))]


def run_command(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """One notebook run as a subprocess, its output kept."""
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": ""} | env,
        timeout=900,
    )


def run_cases(
    cases: list, tiny_data: Path, workdir: Path, extra: dict | None = None
) -> dict[str, subprocess.CompletedProcess]:
    """Run every case (``pytest.param``), two at a time, as ``make run`` does
    (``python -m utils.run_notebook``); ``extra`` adds ready-made commands by name, as
    (command, folder, environment). Each run starts its own kernel; they share the data."""
    commands = {}
    for param in cases:
        case = param.values[0]
        settings = {**TINY, "data_dir": str(tiny_data), "weights": "", **case}
        settings["run_name"] = run_name_of(case)
        commands[param.id] = (
            [sys.executable, "-m", "utils.run_notebook", *as_arguments(settings)],
            workdir,
            TWO_DEVICES if case.get("distribute") == "mirrored" else {},
        )
    commands |= extra or {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_command, *command) for name, command in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def check_finished_case(result: subprocess.CompletedProcess, case: dict[str, object]) -> Path:
    """The run of ``case`` finished, with every artifact, on the devices it asked for."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done. Results are in" in result.stdout
    run_dir = out_dir() / run_name_of(case)
    check_artifacts(run_dir, case)
    copies = 2 if case.get("distribute") == "mirrored" else 1
    assert f"Devices:      {copies} (model copies" in (run_dir / "notebook.ipynb").read_text()
    return run_dir


def check_cells_nbval_does_not_compare(executed: Path, run_dir: Path) -> None:
    """Each sentence, score and probability computed from trained weights equals what the
    run's files give when recomputed, and the report agrees with its confusion matrix."""
    notebook = nbformat.read(executed, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    shown = [output_text(cell.outputs) for cell in code_cells]
    assert check_trained_cells(code_cells, shown, run_dir) == len(TRAINED)
    check_artifacts_agree(run_dir)


def plain_papermill_command(tiny_data: Path, elsewhere: Path) -> tuple[list[str], Path, dict]:
    """A teacher's own papermill call, from a folder outside the project, with a training
    budget that cuts the epochs (30 paintings: a budget of 60 allows 2 of 3)."""
    settings = {**TINY, "data_dir": str(tiny_data), "run_name": "plain-papermill"}
    settings |= {"num_epochs": 3, "training_budget": 60}
    papermill = str(Path(sys.executable).with_name("papermill"))
    notebook = str(run_notebook.NOTEBOOK)
    return (
        [papermill, notebook, "executed.ipynb", "-k", "cnn-artists", *as_arguments(settings)],
        elsewhere,
        {},
    )
