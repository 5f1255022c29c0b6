"""What a run writes after evaluation, in one call: the report, the predictions, the history
and metrics.json, which must agree."""

import csv
import json

import numpy as np
import pytest

from utils import calibration, dataset, results, training
from utils.loading import LoadedDataset, SplitArrays

NAMES = ["Cezanne", "Degas", "Monet"]


def loaded(tmp_path) -> LoadedDataset:
    """Six training and six evaluation paintings, two per artist, as arrays."""
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 1, 1, 2, 2])

    def split(name: str) -> SplitArrays:
        X = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
        files = [tmp_path / name / NAMES[label] / f"{i}.jpg" for i, label in enumerate(y)]
        return SplitArrays(X, y, files, np.full((6, 2), 8))

    layout = dataset.Layout("kaggle", tmp_path / "train", tmp_path / "val")
    return LoadedDataset(NAMES, split("train"), split("val"), [], layout, 0.1)


PROBA = np.array(
    [
        [0.5, 0.3, 0.2],
        [0.2, 0.5, 0.3],
        [0.3, 0.4, 0.3],
        [0.6, 0.2, 0.2],
        [0.1, 0.2, 0.7],
        [0.3, 0.3, 0.4],
    ],
    dtype=np.float32,
)
CURVES = {"accuracy": [0.4, 0.6, 0.7], "loss": [1.1, 0.9, 0.8]}


def test_every_file_is_written_and_tells_one_story(tmp_path):
    data, run_dir = loaded(tmp_path), tmp_path / "run"
    run_dir.mkdir()
    metrics = results.write(run_dir, data, PROBA, CURVES, {"epochs": 3, "head_only_epochs": 1})
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["epochs"] == 3 and metrics["final_epoch"] == {"accuracy": 0.7, "loss": 0.8}
    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["phase"] for row in rows] == ["head", "fine-tune", "fine-tune"]
    assert [float(row["loss"]) for row in rows] == CURVES["loss"]
    report = (run_dir / "classification_report.txt").read_text().splitlines()
    assert [line.split()[0] for line in report[2:5]] == NAMES
    assert "reliability_before_temperature" not in metrics


def test_a_history_without_phases_and_a_temperature_that_changed_nothing(tmp_path):
    data, run_dir = loaded(tmp_path), tmp_path / "run"
    run_dir.mkdir()
    same = calibration.apply_temperature(PROBA, 1.0)
    metrics = results.write(
        run_dir, data, same, CURVES, {"head_only_epochs": None}, proba_before_temperature=PROBA
    )
    assert "phase" not in (run_dir / "history.csv").read_text().splitlines()[0]
    assert "reliability_before_temperature" not in metrics


def test_the_reliability_before_a_temperature_is_kept_beside_the_one_after(tmp_path):
    data, run_dir = loaded(tmp_path), tmp_path / "run"
    run_dir.mkdir()
    sharpened = calibration.apply_temperature(PROBA, 0.5)
    metrics = results.write(run_dir, data, sharpened, CURVES, {}, proba_before_temperature=PROBA)
    assert metrics["reliability_before_temperature"]["counts"] != metrics["reliability"]["counts"]
    before = metrics["expected_calibration_error_before_temperature"]
    assert before == metrics["reliability_before_temperature"]["expected_calibration_error"]
    assert metrics["accuracy"] == pytest.approx(4 / 6)  # the answers did not change


def test_a_run_whose_loss_became_nan_writes_nothing(tmp_path):
    data, run_dir = loaded(tmp_path), tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(training.NonFiniteTrainingError):
        results.write(run_dir, data, PROBA, {"loss": [1.0, float("nan")]}, {})
    assert list(run_dir.iterdir()) == []
