"""The notebook's compile and fit cells as two functions, for tests that train small models.

They make the same calls as the notebook's "The model" and "Training" sections, and use the
notebook's own ``make_optimizer`` (its cell tagged ``optimizer``, run here), so a test that
trains through them trains as the notebook does.
"""

import time
from pathlib import Path

import nbformat
import numpy as np

from utils import pretrained, run_notebook, training
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
    first_epoch, earlier_epochs = training.earlier_epochs(run_dir, resume)
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


def transfer_section(
    unfreeze_blocks: int,
    weights: str = "",
    input_size: int = 32,
    num_classes: int = 3,
    middle_block: int = 0,
) -> dict:
    """The namespace of the chapter's section 7 after its cell tagged ``transfer`` (the
    EfficientNet-Lite0 network with its head is built), with four random paintings, so
    that a test can run the section's other cells in it (``exec(notebook_cell(tag), ...)``)."""
    X = np.random.default_rng(0).integers(0, 256, (4, input_size, input_size, 3), dtype=np.uint8)
    y = np.arange(4) % num_classes
    namespace = {
        "keras": keras,
        "layers": keras.layers,
        "pretrained": pretrained,
        "training": training,
        "time": time,
        "make_optimizer": make_optimizer,
        "strategy": training.distribution_strategy("none"),
        **{"seed": 0, "input_size": input_size, "num_classes": num_classes, "weights": weights},
        **{"X_train": X, "y_train": y, "X_val": X, "y_val": y, "batch_size": 4},
        **{"unfreeze_blocks": unfreeze_blocks, "head_epochs": 1, "fine_tune_epochs": 1},
        "middle_block": middle_block,
        **{"training_budget": 0, "steps_per_epoch": 1, "cosine_decay": False},
        **{"optimizer": "adam", "learning_rate": 0.01, "fine_tune_learning_rate": 0.01},
        **{"label_smoothing": 0.0, "transfer_epochs": 2, "head_only_epochs": 1},
    }
    exec(notebook_cell("transfer"), namespace)
    return namespace


def build_like_the_notebook(name: str, input_size: int, num_classes: int, **options) -> keras.Model:
    """The network ``name`` as the chapter builds it: ``efficientnet_lite0`` by its section 7
    (random weights; ``middle_block`` among the ``options``), any other by
    ``models.build_model``."""
    from utils import models

    if name in models.PRETRAINED:
        middle_block = options.get("middle_block", 0)
        return transfer_section(5, "", input_size, num_classes, middle_block)["transfer_network"]
    return models.build_model(name, input_size, num_classes, **options)
