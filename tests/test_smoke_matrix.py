"""The notebook itself, end to end, for every model it offers, in float32 and in bfloat16.

Each case is one papermill run through the runner that ``make run`` uses, on a tiny
data set (three paintings per artist, 32 px, one epoch), so what users run is what is
tested. ``mixed_bfloat16`` is forced even where the processor emulates it slowly: that
is where 16-bit numbers used to reach OpenCV and end a run after training.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from notebook_outputs import (
    ARTIFACTS,
    TRAINED,
    check_artifacts_agree,
    check_trained_cells,
    output_text,
)

from utils import models, predict, run_notebook, runs, sample_data

PRECISIONS = ("float32", "mixed_bfloat16")
TINY = {
    "image_size": 32,
    "num_epochs": 1,
    "batch_size": 8,
    "filters": 8,
    "head_epochs": 1,  # also section 11's transfer-learning comparison: 1 + 2 epochs
    "verbose": 0,
}
# bfloat16 for one network of each kind: from scratch, the recipe, pretrained.
BFLOAT16_MODELS = ("cnn", "brushwork", "efficientnet_lite0")
# The pretrained network with its real ImageNet weights, through both phases of training.
TWO_PHASES = {"weights": "imagenet", "num_epochs": 2, "head_epochs": 1, "unfreeze_blocks": 2}
# Section 11's comparison with ImageNet needs 32 px: these run below it, to save time, and the
# cnn, ImageNet and awkward-data runs keep it.
WITHOUT_COMPARISON = {"image_size": 24}
CASES = [
    pytest.param(
        {"model": name, "precision": precision}
        | (TWO_PHASES if name in models.PRETRAINED else {})
        | (WITHOUT_COMPARISON if name in ("shallow", "lenet", "brushwork") else {}),
        id=f"{name}-{precision}",
    )
    for name in models.MODEL_NAMES
    for precision in PRECISIONS
    if precision == "float32" or name in BFLOAT16_MODELS
] + [
    pytest.param(
        {"model": "brushwork", "precision": "mixed_bfloat16", "crop_size": 20},
        id="brushwork-crops-mixed_bfloat16",
    ),
    pytest.param(
        {"model": "efficientnet_lite0", "precision": "float32", "unfreeze_blocks": 0}
        | {"weights": "imagenet", "num_epochs": 2},
        id="efficientnet_lite0-frozen-features-float32",
    ),
    pytest.param(
        {"model": "cnn", "precision": "float32", "data_mode": "disk"},
        id="cnn-float32-disk",
    ),
    pytest.param(
        {"model": "cnn", "precision": "mixed_bfloat16", "distribute": "mirrored"}
        | WITHOUT_COMPARISON,
        id="cnn-mirrored-on-2-cpu-devices-mixed_bfloat16",
    ),
]
# distribute: mirrored runs on the processor split into two logical devices (utils.backend).
TWO_DEVICES = {"CNN_ARTISTS_CPU_DEVICES": "2"}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Three training and two validation synthetic paintings per artist, shared by every run."""
    return sample_data.generate(tmp_path_factory.mktemp("tiny"), train_per_class=3, val_per_class=2)


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
    return f"smoke-{'-'.join(str(v) for v in case.values())}"


def as_arguments(settings: dict[str, object]) -> list[str]:
    return [part for name, value in settings.items() for part in ("-p", name, str(value))]


@pytest.fixture(scope="module")
def matrix(tiny_data, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Run every case, two at a time, as ``make run`` does (``python -m utils.run_notebook``).

    One case instead runs plain ``papermill`` from a folder outside the project, as a
    teacher's own script would. Each run starts its own kernel; they share the data.
    """
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    commands = {}
    for param in CASES:
        case = param.values[0]
        settings = {**TINY, "data_dir": str(tiny_data), "weights": "", **case}
        settings["run_name"] = run_name_of(case)
        commands[param.id] = (
            [sys.executable, "-m", "utils.run_notebook", *as_arguments(settings)],
            None,
            TWO_DEVICES if case.get("distribute") == "mirrored" else {},
        )
    awkward = awkward_data(tiny_data, tmp_path_factory.mktemp("awkward"))
    settings = {**TINY, "data_dir": str(awkward), "run_name": "awkward-data"}
    commands["awkward-data"] = (
        [sys.executable, "-m", "utils.run_notebook", *as_arguments(settings)],
        None,
        {},
    )
    settings = {**TINY, "data_dir": str(tiny_data), "run_name": "plain-papermill"}
    settings |= {"num_epochs": 3, "training_budget": 60}  # 30 paintings: the budget allows 2
    papermill = str(Path(sys.executable).with_name("papermill"))
    notebook = str(run_notebook.NOTEBOOK)
    commands["plain-papermill"] = (
        [papermill, notebook, "executed.ipynb", "-k", "cnn-artists", *as_arguments(settings)],
        elsewhere,
        {},
    )

    def run(command: list[str], cwd: Path | None, env: dict) -> subprocess.CompletedProcess:
        return subprocess.run(
            command,
            cwd=cwd or tmp_path_factory.getbasetemp(),
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONPATH": ""} | env,
            timeout=900,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run, *command) for name, command in commands.items()}
        results = {name: future.result() for name, future in futures.items()}
    results["elsewhere"] = elsewhere
    return results


@pytest.mark.parametrize("case", CASES)
def test_every_model_and_precision_produces_every_artifact(matrix, request, case):
    result = matrix[request.node.callspec.id]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done. Results are in" in result.stdout
    run_dir = Path(os.environ["CNN_ARTISTS_OUT"]) / run_name_of(case)
    check_artifacts(run_dir, case)
    copies = 2 if case.get("distribute") == "mirrored" else 1
    assert f"Devices:      {copies} (model copies" in (run_dir / "notebook.ipynb").read_text()
    if case["model"] in models.PRETRAINED and case["unfreeze_blocks"]:
        with open(run_dir / "history.csv", newline="") as handle:
            assert [row["phase"] for row in csv.DictReader(handle)] == ["head", "fine-tune"]
        assert not any(p.name.startswith("checkpoint") for p in run_dir.iterdir())


def test_memory_mapped_images_give_the_numbers_of_images_in_memory(matrix):
    out = Path(os.environ["CNN_ARTISTS_OUT"])
    in_memory = out / run_name_of({"model": "cnn", "precision": "float32"})
    on_disk = out / run_name_of({"model": "cnn", "precision": "float32", "data_mode": "disk"})
    assert "memory-mapped from disk" in (on_disk / "notebook.ipynb").read_text()
    assert "Loaded in" in (in_memory / "notebook.ipynb").read_text()
    assert (on_disk / "history.csv").read_text() == (in_memory / "history.csv").read_text()
    disk, memory = (json.loads((run / "metrics.json").read_text()) for run in (on_disk, in_memory))
    for name in ("accuracy", "macro_f1", "f1_per_artist", "expected_calibration_error"):
        assert disk[name] == memory[name], name


def test_a_head_on_frozen_features_trains_in_one_phase(matrix):
    """``unfreeze_blocks`` 0: the ImageNet features are computed once, the head alone trains
    for every epoch, and the time to compute them counts as training."""
    case = next(p.values[0] for p in CASES if p.id == "efficientnet_lite0-frozen-features-float32")
    run_dir = Path(os.environ["CNN_ARTISTS_OUT"]) / run_name_of(case)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["head_only_epochs"] is None
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2 and "phase" not in history[0]
    notebook = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
    shown = "".join(output_text(cell.get("outputs", [])) for cell in notebook.cells)
    assert "computing the ImageNet features once" in shown
    assert "Fine-tuned the top" not in shown


def test_awkward_data_still_gives_a_finished_run(matrix):
    result = matrix["awkward-data"]
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = Path(os.environ["CNN_ARTISTS_OUT"]) / "awkward-data"
    assert runs.read_status(run_dir)["status"] == runs.FINISHED
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert LONG_NAME in metrics["class_names"]
    assert [Path(p).parent.name for p in metrics["skipped_files"]] == ["Cezanne", "Degas"]
    loaded = metrics["images_per_artist"]
    assert loaded["training"]["Cezanne"] == loaded["training"]["Gauguin"] - 1
    assert loaded["validation"]["Hassam"] == 0
    assert sum(loaded["training"].values()) == metrics["images"]["training"]
    assert "Loaded, per artist" in (run_dir / "notebook.ipynb").read_text()
    assert (run_dir / "model.keras").is_file()


def test_plain_papermill_works_from_any_folder(matrix):
    """A teacher's own papermill call, started outside the project, finds ``utils``."""
    result = matrix["plain-papermill"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert (matrix["elsewhere"] / "executed.ipynb").is_file()
    run_dir = Path(os.environ["CNN_ARTISTS_OUT"]) / "plain-papermill"
    assert runs.read_status(run_dir)["status"] == runs.FINISHED
    assert (run_dir / "model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["parameters"]["training_budget"] == 60
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 2


FINISHED_RUNS = [run_name_of(param.values[0]) for param in CASES] + [
    "awkward-data",
    "plain-papermill",
]


@pytest.mark.parametrize("run_name", FINISHED_RUNS)
def test_cells_nbval_does_not_compare_say_what_the_run_saved(matrix, run_name):
    """Each sentence, score and probability computed from trained weights equals what the
    run's files give when recomputed, and the report agrees with its confusion matrix."""
    run_dir = Path(os.environ["CNN_ARTISTS_OUT"]) / run_name
    executed = (
        matrix["elsewhere"] / "executed.ipynb"  # plain papermill writes where it is told
        if run_name == "plain-papermill"
        else run_dir / "notebook.ipynb"
    )
    notebook = nbformat.read(executed, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    shown = [output_text(cell.outputs) for cell in code_cells]
    assert check_trained_cells(code_cells, shown, run_dir) == len(TRAINED)
    check_artifacts_agree(run_dir)
