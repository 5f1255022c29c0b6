"""Probabilities that mean what they say: temperature scaling (Guo et al. 2017, "On
Calibration of Modern Neural Networks").

A network trained with label smoothing, whose answer is the mean of ten views, spreads its
probabilities too evenly: its 30% answers are right more often than 30% of the time. Dividing
the log of each probability by one number, the temperature, and taking the softmax again
sharpens them (a temperature below 1) or flattens them (above 1). The most probable artist
stays the most probable, so accuracy cannot change.

The temperature is fitted once per recipe on paintings the model did not train on and that
are never scored: a fold of the training split (``benchmarks/calibrate.py``, which records
it in ``benchmarks/results/calibration.json``). The recipe's params file carries it, and every
run of the recipe applies it.
"""

import numpy as np
from scipy.optimize import minimize_scalar

from utils.choices import MAX_TEMPERATURE, MIN_TEMPERATURE

SMALLEST_PROBABILITY = 1e-12  # a probability of 0 has no logarithm


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Each row of ``proba`` as ``softmax(log(proba) / temperature)``, float32; a temperature
    of 1 leaves it as it is."""
    proba = np.asarray(proba, dtype=np.float32)
    if temperature == 1:
        return proba
    logits = np.log(np.clip(proba.astype(np.float64), SMALLEST_PROBABILITY, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits)
    return (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(y_true: np.ndarray, proba: np.ndarray, temperature: float) -> float:
    """The mean of ``-log p(true artist)`` after ``apply_temperature``: what fitting lowers."""
    scaled = apply_temperature(proba, temperature).astype(np.float64)
    right = scaled[np.arange(len(y_true)), y_true]
    return float(-np.mean(np.log(np.clip(right, SMALLEST_PROBABILITY, 1.0))))


def fit_temperature(y_true: np.ndarray, proba: np.ndarray) -> float:
    """The temperature between ``MIN_TEMPERATURE`` and ``MAX_TEMPERATURE`` that gives the true
    artists of these paintings the highest mean log-probability.

    ``proba`` must be made the way the runs that apply it make theirs (the mean of ten views
    for a network trained on crops), on paintings that are not the split it will be scored on.
    """
    if len(y_true) == 0:
        raise ValueError("No paintings to fit a temperature on.")
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(y_true, proba, float(np.exp(log_t))),
        bounds=(np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(found.x))
