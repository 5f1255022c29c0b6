"""The rest of the smoke matrix (``make test-all``): the networks that download their
weights online, 16-bit arithmetic for one network of each kind, crops, a head on frozen
ImageNet features, images memory-mapped from disk, and two devices.

``mixed_bfloat16`` is forced even where the processor emulates it slowly: that is where
16-bit numbers used to reach OpenCV and end a run after training.
"""

import csv
import json

import nbformat
import pytest
from notebook_outputs import output_text
from smoke_runs import (
    SMALLER,
    TWO_PHASES,
    check_cells_nbval_does_not_compare,
    check_finished_case,
    out_dir,
    run_cases,
    run_name_of,
)

from utils import sample_data

pytestmark = pytest.mark.slow

IN_MEMORY = {"model": "cnn", "precision": "float32", "data_mode": "memory"}
ON_DISK = {"model": "cnn", "precision": "float32", "data_mode": "disk"}
FROZEN_FEATURES = {"model": "efficientnet_lite0", "precision": "float32", "unfreeze_blocks": 0}
FROZEN_FEATURES |= {
    "weights": "imagenet",
    "head_epochs": 2,
    "fine_tune_epochs": 0,
    "middle_block": 12,
}
CASES = [
    pytest.param({"model": name, "precision": "float32"}, id=f"{name}-float32")
    for name in ("mobilenetv2", "efficientnetb0")
] + [
    # bfloat16 for one network of each kind: from scratch, the recipe, pretrained.
    pytest.param({"model": "cnn", "precision": "mixed_bfloat16"}, id="cnn-mixed_bfloat16"),
    pytest.param(
        {"model": "brushwork", "precision": "mixed_bfloat16"} | SMALLER,
        id="brushwork-mixed_bfloat16",
    ),
    pytest.param(
        {"model": "efficientnet_lite0", "precision": "mixed_bfloat16"} | TWO_PHASES,
        id="efficientnet_lite0-mixed_bfloat16",
    ),
    pytest.param(
        {"model": "brushwork", "precision": "mixed_bfloat16", "crop_size": 20},
        id="brushwork-crops-mixed_bfloat16",
    ),
    pytest.param(FROZEN_FEATURES, id="efficientnet_lite0-frozen-features-float32"),
    pytest.param(IN_MEMORY, id="cnn-float32-memory"),
    pytest.param(ON_DISK, id="cnn-float32-disk"),
    pytest.param(
        {"model": "cnn", "precision": "mixed_bfloat16", "distribute": "mirrored"} | SMALLER,
        id="cnn-mirrored-on-2-cpu-devices-mixed_bfloat16",
    ),
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Three training and two validation synthetic paintings per artist, shared by every run."""
    return sample_data.generate(tmp_path_factory.mktemp("tiny"), train_per_class=3, val_per_class=2)


@pytest.fixture(scope="module")
def matrix(tiny_data, tmp_path_factory) -> dict:
    """Every case, two at a time."""
    return run_cases(CASES, tiny_data, tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("case", CASES)
def test_every_case_produces_every_artifact(matrix, request, case):
    check_finished_case(matrix[request.node.callspec.id], case)


def test_memory_mapped_images_give_the_numbers_of_images_in_memory(matrix):
    in_memory, on_disk = (out_dir() / run_name_of(case) for case in (IN_MEMORY, ON_DISK))
    assert "memory-mapped from disk" in (on_disk / "notebook.ipynb").read_text()
    assert "Loaded in" in (in_memory / "notebook.ipynb").read_text()
    assert (on_disk / "history.csv").read_text() == (in_memory / "history.csv").read_text()
    disk, memory = (json.loads((run / "metrics.json").read_text()) for run in (on_disk, in_memory))
    for name in ("accuracy", "macro_f1", "f1_per_artist", "expected_calibration_error"):
        assert disk[name] == memory[name], name


def test_a_head_on_frozen_features_trains_in_one_phase(matrix):
    """``unfreeze_blocks`` 0: the ImageNet features are computed once, the head alone trains
    for every epoch, nothing is fine-tuned, and the time to compute them counts as training."""
    run_dir = out_dir() / run_name_of(FROZEN_FEATURES)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == metrics["head_only_epochs"] == 2
    with open(run_dir / "history.csv", newline="") as handle:
        assert [row["phase"] for row in csv.DictReader(handle)] == ["head", "head"]
    notebook = nbformat.read(run_dir / "notebook.ipynb", as_version=4)
    shown = "".join(output_text(cell.get("outputs", [])) for cell in notebook.cells)
    assert "Computed the ImageNet features once" in shown
    assert "then fine-tuned 0" in shown


@pytest.mark.parametrize("run_name", [run_name_of(p.values[0]) for p in CASES])
def test_cells_nbval_does_not_compare_say_what_the_run_saved(matrix, run_name):
    """As in ``test_smoke_matrix.py``, for every run here."""
    run_dir = out_dir() / run_name
    check_cells_nbval_does_not_compare(run_dir / "notebook.ipynb", run_dir)
