"""The report puts every artist on its own row; metrics agree with the predictions."""

import numpy as np
import pytest

from utils import evaluation

NAMES = ["Cezanne", "Degas", "Monet"]


def test_report_rows_follow_the_class_list_even_for_unpredicted_classes():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 0, 2, 2])  # Degas is never predicted
    lines = [
        line.split()
        for line in evaluation.report(y_true, y_pred, NAMES).splitlines()
        if line.strip()
    ]
    rows = {line[0]: line[1:] for line in lines[1:4]}
    assert list(rows) == NAMES
    assert rows["Cezanne"] == ["0.500", "1.000", "0.667", "2"]
    assert rows["Degas"] == ["0.000", "0.000", "0.000", "2"]
    assert rows["Monet"] == ["1.000", "1.000", "1.000", "2"]


def test_report_lists_a_class_absent_from_the_split():
    report = evaluation.report(np.array([0, 0]), np.array([0, 1]), NAMES)
    assert "Monet" in report


def test_summary_metrics():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 0, 2, 2])
    metrics = evaluation.summary_metrics(y_true, y_pred, NAMES)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["f1_per_artist"] == pytest.approx({"Cezanne": 2 / 3, "Degas": 0.0, "Monet": 1.0})
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 1) / 3)
    assert metrics["chance_accuracy"] == pytest.approx(1 / 3)
    assert evaluation.report_dict(y_true, y_pred, NAMES)["Degas"]["support"] == 2


def test_confusion_counts():
    matrix = evaluation.confusion(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_most_confident_mistakes_come_first():
    proba = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.6, 0.4, 0]])
    y_true = np.array([1, 1, 0, 2])
    assert evaluation.most_confident_mistakes(y_true, proba, 5).tolist() == [0, 2, 3]
    assert evaluation.most_confident_mistakes(y_true, proba, 1).tolist() == [0]


def test_most_confused_pairs_count_both_directions():
    matrix = np.array([[5, 2, 0], [3, 4, 1], [0, 0, 6]])
    pairs = evaluation.most_confused_pairs(matrix, NAMES, count=5)
    assert pairs == [("Cezanne", "Degas", 2, 3), ("Degas", "Monet", 1, 0)]


def test_reliability_bins_and_calibration_error():
    proba = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    y_true = np.array([0, 1, 0, 0])
    result = evaluation.reliability(y_true, proba, num_bins=10)
    assert sum(result["counts"]) == 4
    assert result["counts"][8] == 1 and result["counts"][9] == 1  # 0.9 and 0.95
    assert result["accuracy"][9] == 1.0 and result["accuracy"][8] == 0.0
    assert result["mean_confidence"][5] == pytest.approx(0.575)
    expected = (abs(0.95 - 1) + abs(0.9 - 0) + 2 * abs(0.575 - 1)) / 4
    assert result["expected_calibration_error"] == pytest.approx(expected)


def test_perfectly_calibrated_predictions_have_no_error():
    proba = np.tile([[1.0, 0.0]], (5, 1))
    assert evaluation.reliability(np.zeros(5, int), proba)["expected_calibration_error"] == 0


def test_crop_models_are_judged_on_ten_views():
    from utils import models

    model = models.build_model("brushwork", 16, 3, filters=4)
    X = np.random.default_rng(0).integers(0, 256, (2, 20, 20, 3), dtype=np.uint8)
    proba = evaluation.predict_proba(model, X)
    views = [X[:, y : y + 16, x : x + 16] for y, x in ((2, 2), (0, 0), (0, 4), (4, 0), (4, 4))]
    views += [v[:, :, ::-1] for v in views]
    expected = np.mean([model.predict(np.ascontiguousarray(v), verbose=0) for v in views], axis=0)
    np.testing.assert_allclose(proba, expected, rtol=1e-5)
    assert proba.shape == (2, 3)


def test_predictions_file_gives_back_the_very_probabilities(tmp_path):
    """Written in full, read back as float32: the same bits, names with commas included."""
    class_names = ["Monet", "Renoir, Pierre-Auguste", "Degas"]
    proba = np.random.default_rng(0).dirichlet(np.ones(3), size=5).astype(np.float32)
    y_true = np.array([0, 1, 2, 1, 0])
    paintings = [f"data/x/{i}.jpg" for i in range(5)]
    path = tmp_path / "predictions.csv"
    path.write_text(evaluation.predictions_csv(paintings, y_true, proba, class_names))
    read_paintings, read_y, read_proba = evaluation.read_predictions(path)
    assert read_paintings == paintings
    assert np.array_equal(read_y, y_true)
    assert read_proba.dtype == np.float32 and np.array_equal(read_proba, proba)
    assert path.read_text().splitlines()[0].startswith("painting,true_artist,predicted_artist,")


def test_an_empty_predictions_file_reads_as_no_paintings(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_text(evaluation.predictions_csv([], np.zeros(0), np.zeros((0, 2)), ["A", "B"]))
    paintings, y_true, proba = evaluation.read_predictions(path)
    assert paintings == [] and len(y_true) == 0 and proba.shape == (0, 2)
