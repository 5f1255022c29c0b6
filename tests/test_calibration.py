"""Temperature scaling: the answer never changes, the probabilities mean what they say."""

import numpy as np
import pytest

from utils import calibration, evaluation


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
