"""The notebook itself, end to end, for each network a first user is likely to pick.

Each case is one papermill run through the runner that ``make run`` uses, on a tiny
data set (three paintings per artist, 32 px, one epoch), so what users run is what is
tested. Two more runs: the default ``cnn`` on data that used to end runs after training,
and a teacher's own papermill call from outside the project. The other networks, 16-bit
arithmetic, crops, frozen features, disk mode and two devices run in
``test_smoke_matrix_more.py`` (``make test-all``).
"""

import csv
import json
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_outputs import output_text
from smoke_runs import (
    LONG_NAME,
    SMALLER,
    TINY,
    TWO_PHASES,
    as_arguments,
    awkward_data,
    check_artifacts,
    check_cells_nbval_does_not_compare,
    check_finished_case,
    out_dir,
    plain_papermill_command,
    run_cases,
    run_name_of,
)

from utils import runs, sample_data

# The default network at 32 px with both phases of section 7: the case for the cnn, on data
# that used to end runs after training (nbval runs it on the clean sample).
AWKWARD = {"model": "cnn", "precision": "float32"}
CASES = [
    pytest.param({"model": name, "precision": "float32"} | SMALLER, id=f"{name}-float32")
    for name in ("shallow", "lenet", "brushwork")
] + [
    pytest.param(
        {"model": "efficientnet_lite0", "precision": "float32", "temperature": 0.5}
        | {"middle_block": 12}
        | TWO_PHASES,
        id="efficientnet_lite0-middle-block-float32",
    ),
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Three training and two validation synthetic paintings per artist, shared by every run."""
    return sample_data.generate(tmp_path_factory.mktemp("tiny"), train_per_class=3, val_per_class=2)


@pytest.fixture(scope="module")
def matrix(tiny_data, tmp_path_factory) -> dict:
    """Every case, the awkward data and the plain papermill call, two at a time."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    awkward = awkward_data(tiny_data, tmp_path_factory.mktemp("awkward"))
    settings = {**TINY, **AWKWARD, "data_dir": str(awkward), "run_name": "awkward-data"}
    extra = {
        "awkward-data": (
            [sys.executable, "-m", "utils.run_notebook", *as_arguments(settings)],
            tmp_path_factory.getbasetemp(),
            {},
        ),
        "plain-papermill": plain_papermill_command(tiny_data, elsewhere),
    }
    results = run_cases(CASES, tiny_data, tmp_path_factory.getbasetemp(), extra)
    return results | {"elsewhere": elsewhere}


@pytest.mark.parametrize("case", CASES)
def test_every_network_produces_every_artifact(matrix, request, case):
    run_dir = check_finished_case(matrix[request.node.callspec.id], case)
    if case.get("unfreeze_blocks"):
        with open(run_dir / "history.csv", newline="") as handle:
            assert [row["phase"] for row in csv.DictReader(handle)] == ["head", "fine-tune"]
        assert not any(p.name.startswith("checkpoint") for p in run_dir.iterdir())
    if case["model"] == "efficientnet_lite0":  # num_epochs does not apply, and it says so
        executed = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
        [compiled] = [c for c in executed.cells if "compile" in c.metadata.get("tags", [])]
        assert "(not num_epochs)" in output_text(compiled.outputs)
    if case.get("temperature", 1) != 1:  # applied, saved for make predict, shown before/after
        metrics = json.loads((run_dir / "metrics.json").read_text())
        info = json.loads((run_dir / "model_info.json").read_text())
        assert info["temperature"] == case["temperature"]
        assert metrics["reliability_before_temperature"] != metrics["reliability"]


def test_awkward_data_still_gives_a_finished_run_with_every_artifact(matrix):
    result = matrix["awkward-data"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done. Results are in" in result.stdout
    run_dir = out_dir() / "awkward-data"
    check_artifacts(run_dir, AWKWARD | {"image_size": 32, "fine_tune_epochs": 1})
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
    run_dir = out_dir() / "plain-papermill"
    assert runs.read_status(run_dir)["status"] == runs.FINISHED
    assert (run_dir / "model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["parameters"]["training_budget"] == 60
    assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 2


@pytest.mark.parametrize(
    "run_name", [run_name_of(p.values[0]) for p in CASES] + ["awkward-data", "plain-papermill"]
)
def test_cells_nbval_does_not_compare_say_what_the_run_saved(matrix, run_name):
    """Each sentence, score and probability computed from trained weights equals what the
    run's files give when recomputed, and the report agrees with its confusion matrix."""
    run_dir = out_dir() / run_name
    executed = (
        matrix["elsewhere"] / "executed.ipynb"  # plain papermill writes where it is told
        if run_name == "plain-papermill"
        else run_dir / "notebook.ipynb"
    )
    check_cells_nbval_does_not_compare(executed, run_dir)
