"""Temperature scaling: the answer never changes, the probabilities mean what they say."""

import json

import numpy as np
import pytest
import yaml
from test_benchmarks import load_benchmark

from utils import calibration, evaluation, paths

CALIBRATION = paths.PROJECT_ROOT / "benchmarks" / "results" / "calibration.json"


def under_confident(rng: np.random.Generator, count: int = 2000, classes: int = 10):
    """Labels and probabilities made at temperature 3 from logits whose softmax is calibrated:
    right as often as they say once the temperature 1/3 sharpens them back."""
    logits = rng.normal(0, 2.5, (count, classes))
    calibrated = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(classes, p=row) for row in calibrated])
    flattened = np.exp(logits / 3) / np.exp(logits / 3).sum(axis=1, keepdims=True)
    return y, flattened.astype(np.float32)


def test_a_temperature_keeps_every_answer_and_rows_that_sum_to_one():
    proba = np.random.default_rng(0).dirichlet(np.ones(10), size=50).astype(np.float32)
    for temperature in (0.2, 0.5, 2.0, 7.0):
        scaled = calibration.apply_temperature(proba, temperature)
        np.testing.assert_array_equal(scaled.argmax(axis=1), proba.argmax(axis=1))
        np.testing.assert_allclose(scaled.sum(axis=1), 1, rtol=1e-5)
        sharper = temperature < 1
        assert (scaled.max(axis=1) >= proba.max(axis=1) - 1e-6).all() == sharper
    np.testing.assert_array_equal(calibration.apply_temperature(proba, 1.0), proba)


def test_a_probability_of_zero_is_no_problem():
    proba = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    scaled = calibration.apply_temperature(proba, 0.5)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled[0], [1, 0, 0], atol=1e-6)


def test_the_fitted_temperature_undoes_a_known_flattening_and_lowers_the_calibration_error():
    y, proba = under_confident(np.random.default_rng(1))
    temperature = calibration.fit_temperature(y, proba)
    assert temperature == pytest.approx(1 / 3, rel=0.1)
    before = evaluation.reliability(y, proba)["expected_calibration_error"]
    after = evaluation.reliability(y, calibration.apply_temperature(proba, temperature))
    assert after["expected_calibration_error"] < before / 3
    nll = calibration.negative_log_likelihood
    assert nll(y, proba, temperature) < nll(y, proba, 1.0)


def test_an_empty_fold_cannot_be_fitted():
    with pytest.raises(ValueError, match="No paintings"):
        calibration.fit_temperature(np.array([], dtype=int), np.zeros((0, 10)))


def recipes_with_a_temperature() -> dict[str, dict]:
    """Every params file that sets a temperature, by its name, with its settings."""
    found = {}
    for params_file in sorted((paths.PROJECT_ROOT / "params").glob("*.yaml")):
        settings = yaml.safe_load(params_file.read_text())
        if settings.get("temperature", 1) != 1:
            found[params_file.stem] = settings
    return found


def test_the_recipes_temperatures_were_fitted_on_a_training_fold_never_on_the_scored_split():
    """Each recipe's temperature is the one benchmarks/calibrate.py recorded, fitted on a fold
    of the training split; the recipe itself is scored on its validation split."""
    recorded = json.loads(CALIBRATION.read_text())
    recipes = recipes_with_a_temperature()
    assert {"transfer", "transfer-quick"} <= set(recipes)
    for name, settings in recipes.items():
        fit = recorded[name]
        assert fit["params"] == f"params/{name}.yaml"
        assert settings["temperature"] == fit["temperature"]
        assert 1 <= fit["holdout_fold"] <= fit["holdout_folds"]
        assert fit["evaluated_on"].startswith(f"held-out fold {fit['holdout_fold']} of")
        assert f"-p holdout_fold {fit['holdout_fold']}" in fit["command"]
        assert settings.get("holdout_fold", 0) == 0, f"{name} must be scored on validation"


def fitting_run(tmp_path, holdout_fold: int, temperature: float = 1.0):
    """A finished run's folder as calibrate.py reads it: metrics.json and predictions.csv."""
    y, proba = under_confident(np.random.default_rng(2), count=400, classes=3)
    names = ["Cezanne", "Degas", "Monet"]
    files = [tmp_path / f"{i}.jpg" for i in range(len(y))]
    (tmp_path / "predictions.csv").write_text(evaluation.predictions_csv(files, y, proba, names))
    parameters = {"holdout_fold": holdout_fold, "temperature": temperature}
    evaluated_on = f"held-out fold {holdout_fold} of 5 of the training split"
    metrics = {"parameters": parameters, "accuracy": 0.5, "evaluated_on": evaluated_on}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    return tmp_path


def test_calibrate_fits_on_a_fold_and_refuses_the_validation_split(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(paths.PROJECT_ROOT / "benchmarks"))  # its own imports
    calibrate = load_benchmark("calibrate")
    fit = calibrate.fitted(fitting_run(mkdir(tmp_path / "fold"), 5))
    assert fit["temperature"] == pytest.approx(1 / 3, rel=0.15)
    errors = fit["expected_calibration_error"]
    assert errors["after"] < errors["before"]
    with pytest.raises(SystemExit, match="never fitted there"):
        calibrate.fitted(fitting_run(mkdir(tmp_path / "validation"), 0))
    with pytest.raises(SystemExit, match="already applied a temperature"):
        calibrate.fitted(fitting_run(mkdir(tmp_path / "scaled"), 5, temperature=0.5))


def mkdir(path):
    """``path``, made."""
    path.mkdir()
    return path
