"""Seeding, compiling and fitting: everything between a built model and its history."""

import time
from dataclasses import dataclass

import numpy as np

from utils.backend import keras, tf

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class TrainingResult:
    """What ``train`` returns: per-epoch metrics and the wall-clock time of the fit."""

    history: dict[str, list[float]]
    seconds: float


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The optimizer called ``name`` (sgd, adam or adamw) at ``learning_rate``."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    raise ValueError(f"Unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def compile_model(model: keras.Model, optimizer: str, learning_rate: float) -> keras.Model:
    """Compile for integer labels with cross-entropy loss and accuracy."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train(
    model: keras.Model,
    X_train: np.ndarray,
    y_train: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
    num_epochs: int,
    batch_size: int,
    verbose: int = 2,
) -> TrainingResult:
    """Fit a compiled model; ``validation`` is only measured each epoch, never trained on.

    ``verbose`` follows Keras: 0 silent, 1 a progress bar, 2 one line per epoch.
    """
    start = time.perf_counter()
    history = model.fit(
        X_train,
        y_train,
        validation_data=validation,
        epochs=num_epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    return TrainingResult(
        {k: [float(v) for v in vals] for k, vals in history.history.items()}, seconds
    )
