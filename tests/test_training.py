"""Seeding makes training repeatable; the training helper returns the history."""

import numpy as np
import pytest

from utils import models, training


def tiny_problem():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    y = np.arange(24) % 3
    X[y == 1, :, :, 0] = 255  # a learnable signal: class 1 is red
    return X, y


def fit_once(seed):
    training.set_seed(seed)
    model = training.compile_model(models.build_model("cnn", 16, 3, filters=4), "adam", 0.01)
    X, y = tiny_problem()
    result = training.train(model, X, y, (X[:6], y[:6]), num_epochs=2, batch_size=8, verbose=0)
    return model, result


def test_same_seed_same_weights_and_history():
    first_model, first = fit_once(3)
    second_model, second = fit_once(3)
    assert first.history == second.history
    for a, b in zip(first_model.get_weights(), second_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_history_has_training_and_validation_metrics():
    _, result = fit_once(4)
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in result.history.values())
    assert result.seconds > 0


@pytest.mark.parametrize("name", training.OPTIMIZERS)
def test_optimizers_use_the_learning_rate(name):
    optimizer = training.make_optimizer(name, 0.05)
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="adamw"):
        training.make_optimizer("rmsprop", 0.1)
