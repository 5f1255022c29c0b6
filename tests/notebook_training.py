"""The notebook's compile and fit cells as two functions, for tests that train small models.

They make the same calls as the notebook's "The model" and "Training" sections, and use the
notebook's own ``make_optimizer`` (its cell tagged ``optimizer``, run here), so a test that
trains through them trains as the notebook does.
"""

from pathlib import Path

import nbformat
import numpy as np

from utils import run_notebook, training
from utils.backend import keras


def notebook_cell(tag: str) -> str:
    """The source of the chapter's one cell tagged ``tag``."""
    chapter = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    (source,) = [c.source for c in chapter.cells if tag in c.metadata.get("tags", [])]
    return source


def _notebook_make_optimizer():
    namespace = {"keras": keras}
    exec(notebook_cell("optimizer"), namespace)
    return namespace["make_optimizer"]


make_optimizer = _notebook_make_optimizer()


def compile_like_the_notebook(
    model: keras.Model,
    optimizer: str = "adam",
    learning_rate: float = 0.01,
    label_smoothing: float = 0.0,
    decay_steps: int = 0,
) -> keras.Model:
    """Compile ``model`` with the notebook's loss and metric."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate, decay_steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )
    return model


def fit_like_the_notebook(
    model: keras.Model,
    X: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
    num_epochs: int,
    batch_size: int,
    run_dir: Path,
    crop_size: int = 0,
    colour_jitter: float = 0.0,
    seed: int = 0,
    resume: bool = False,
) -> tuple[dict[str, list[float]], int]:
    """Fit as the notebook does (``resume`` as ``make resume`` sets it); the per-epoch
    history from ``run_dir`` and the epoch the training resumed after (0 for a fresh start)."""
    num_classes = model.output_shape[-1]
    first_epoch = training.resume_point(run_dir) if resume else 0
    earlier_epochs = training.logged_history(run_dir, first_epoch)
    train_data = training.TrainingBatches(
        X, y, num_classes, batch_size, seed, crop_size=crop_size, colour_jitter=colour_jitter
    )
    history = model.fit(
        train_data,
        epochs=num_epochs,
        validation_data=validation
        and training.validation_data(
            *validation, num_classes, crop_size=crop_size, batch_size=batch_size
        ),
        callbacks=[
            keras.callbacks.TerminateOnNaN(),
            training.bookkeeping(train_data, seed, run_dir / training.CHECKPOINT, resume),
            keras.callbacks.CSVLogger(run_dir / training.TRAINING_LOG, append=True),
        ],
        shuffle=False,
        verbose=0,
    )
    return training.join_histories(earlier_epochs, history.history), first_epoch
