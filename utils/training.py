"""Seeding, compiling and fitting: everything between a built model and its history."""

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.backend import keras, tf

OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# CPU features that run bfloat16 arithmetic natively (Intel AMX, AVX-512 BF16).
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Keras's CSVLogger appends each completed epoch here, so the history survives interruption.
TRAINING_LOG = "training_log.csv"
# NVIDIA GPUs compute in bfloat16 natively from compute capability 8.0 (Ampere) on.
BF16_GPU_CAPABILITY = (8, 0)


class NonFiniteTrainingError(RuntimeError):
    """Training produced a loss that is not a finite number; its model is not worth using."""


@dataclass(frozen=True)
class TrainingResult:
    """What ``train`` returns: per-epoch metrics (every epoch, resumed ones included), the
    wall-clock time of this fit, and the epoch it resumed after (0 for a fresh start)."""

    history: dict[str, list[float]]
    seconds: float
    resumed_from_epoch: int = 0


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The processor's feature flags as Linux lists them in ``cpuinfo``; empty elsewhere."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """The CUDA compute capability (major, minor) of every visible GPU; empty without one."""
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    return capabilities


def choose_precision(flags: set[str], gpu_capabilities: list[tuple[int, int]]) -> str:
    """What ``precision="auto"`` means on a machine with these CPU flags and GPUs.

    With GPUs: ``mixed_bfloat16`` when every one has compute capability 8.0 or newer,
    else ``mixed_float16`` (Keras then scales the loss so small gradients survive).
    Without: ``mixed_bfloat16`` where the processor has bfloat16 units, else float32.
    """
    if gpu_capabilities:
        if min(gpu_capabilities) >= BF16_GPU_CAPABILITY:
            return "mixed_bfloat16"
        return "mixed_float16"
    return "mixed_bfloat16" if flags & set(NATIVE_BF16_CPU_FLAGS) else "float32"


def set_precision(precision: str) -> str:
    """Set Keras's global dtype policy and return the policy now in force.

    The mixed policies compute in 16 bits and keep the weights in float32. On a
    processor with native bfloat16 (``NATIVE_BF16_CPU_FLAGS``) or a GPU they speed
    training up; on other processors they are slower than float32. ``"auto"`` picks
    one only where it is native (``choose_precision``). Call it before building the
    model. Whatever the policy, the models' softmax output is float32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        precision = choose_precision(cpu_flags(), gpu_compute_capabilities())
    keras.mixed_precision.set_global_policy(precision)
    return precision


def make_optimizer(
    name: str, learning_rate: float, decay_steps: int = 0
) -> keras.optimizers.Optimizer:
    """The optimizer called ``name`` (sgd, adam or adamw) at ``learning_rate``.

    With ``decay_steps`` > 0 the rate warms up over the first 5% of the steps, then
    follows a cosine down to 1% of its peak at the last step.
    """
    if decay_steps > 0:
        warmup = max(1, decay_steps // 20)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps - warmup, alpha=0.01, warmup_target=learning_rate, warmup_steps=warmup
        )
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=5e-4)
    raise ValueError(f"Unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def compile_model(
    model: keras.Model,
    optimizer: str,
    learning_rate: float,
    label_smoothing: float = 0.0,
    decay_steps: int = 0,
) -> keras.Model:
    """Compile with cross-entropy on one-hot labels (``train`` makes them) and accuracy.

    ``label_smoothing`` moves that share of each target onto the other classes, which
    keeps the network from becoming over-confident on a small training set.
    """
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate, decay_steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )
    return model


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Gradient steps in one pass over ``num_images``."""
    return -(-num_images // batch_size)


def centre_crop(X: np.ndarray, crop_size: int) -> np.ndarray:
    """The central ``crop_size`` square of every image in ``X``."""
    offset_y = (X.shape[1] - crop_size) // 2
    offset_x = (X.shape[2] - crop_size) // 2
    return X[:, offset_y : offset_y + crop_size, offset_x : offset_x + crop_size]


def augmented_batches(
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    crop_size: int,
    colour_jitter: float,
    seed: int,
) -> tf.data.Dataset:
    """Shuffled batches of random ``crop_size`` crops, colour-jittered, with one-hot labels.

    Cropping a smaller window from a larger image keeps more brushwork per pixel than
    resizing the whole painting down, and every epoch shows different windows.
    ``colour_jitter`` is the largest relative change of brightness, contrast and
    saturation. The map runs in order, so the same seed gives the same batches.
    """

    def augment(image, label):
        image = tf.image.random_crop(image, (crop_size, crop_size, 3))
        if colour_jitter:
            pixels = tf.cast(image, tf.float32)
            low, high = 1 - colour_jitter, 1 + colour_jitter
            pixels = pixels * tf.random.uniform((), low, high)
            mean = tf.reduce_mean(pixels)
            pixels = mean + (pixels - mean) * tf.random.uniform((), low, high)
            grey = tf.reduce_mean(pixels, axis=-1, keepdims=True)
            pixels = grey + (pixels - grey) * tf.random.uniform((), low, high)
            image = tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
        return image, tf.one_hot(label, num_classes)

    return (
        tf.data.Dataset.from_tensor_slices((X, y))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .map(augment)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def _checkpointed_epochs(checkpoint_dir: Path) -> int:
    """Epochs completed by the checkpoint in ``checkpoint_dir`` (Keras's ``BackupAndRestore``)."""
    try:
        metadata = json.loads((checkpoint_dir / "training_metadata.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(metadata.get("epoch", 0))


def read_history(path: Path, epochs: int | None = None) -> dict[str, list[float]]:
    """The per-epoch metrics that Keras's ``CSVLogger`` wrote to ``path``, first ``epochs`` only."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))[:epochs]
    names = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    return {name: [float(row[name]) for row in rows] for name in names}


def _keep_epochs(path: Path, epochs: int) -> None:
    """Cut the history file back to ``epochs`` rows, as the checkpoint it resumes from."""
    with open(path, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    Path(path).write_text("".join(lines[: 1 + epochs]))


def train(
    model: keras.Model,
    X_train: np.ndarray,
    y_train: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
    num_epochs: int,
    batch_size: int,
    verbose: int = 2,
    crop_size: int = 0,
    colour_jitter: float = 0.0,
    seed: int = 0,
    run_dir: Path | None = None,
) -> TrainingResult:
    """Fit a compiled model; ``validation`` is only measured each epoch, never trained on.

    With ``crop_size`` the model trains on random crops (see ``augmented_batches``) and is
    measured on centre crops. ``verbose`` follows Keras: 0 silent, 1 a progress bar,
    2 one line per epoch. Training stops at the first NaN loss (``TerminateOnNaN``).

    With ``run_dir``, every completed epoch is checkpointed in ``run_dir/checkpoint``
    (weights, optimizer state, epoch: Keras's ``BackupAndRestore``) and appended to
    ``run_dir/training_log.csv``; a run interrupted there resumes after its last
    completed epoch, with the history of every epoch, and the checkpoint is removed
    once training ends.
    """
    num_classes = model.output_shape[-1]

    def one_hot(labels: np.ndarray) -> np.ndarray:
        return keras.utils.to_categorical(labels, num_classes)

    if crop_size:
        inputs = augmented_batches(
            X_train, y_train, num_classes, batch_size, crop_size, colour_jitter, seed
        )
        targets, fit_batch_size, shuffle = None, None, False
        if validation is not None:
            validation = (centre_crop(validation[0], crop_size), validation[1])
    else:
        inputs, targets, fit_batch_size, shuffle = X_train, one_hot(y_train), batch_size, True
    if validation is not None:
        validation = (validation[0], one_hot(validation[1]))
    callbacks = [keras.callbacks.TerminateOnNaN()]
    resumed_from = 0
    if run_dir is not None:
        checkpoint_dir, history_path = Path(run_dir) / "checkpoint", Path(run_dir) / TRAINING_LOG
        resumed_from = _checkpointed_epochs(checkpoint_dir)
        if history_path.exists():
            _keep_epochs(history_path, resumed_from)
        callbacks += [
            keras.callbacks.BackupAndRestore(str(checkpoint_dir)),
            keras.callbacks.CSVLogger(str(history_path), append=True),
        ]
    start = time.perf_counter()
    fitted = model.fit(
        inputs,
        targets,
        validation_data=validation,
        epochs=num_epochs,
        batch_size=fit_batch_size,
        shuffle=shuffle,
        verbose=verbose,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - start
    if run_dir is not None:
        history = read_history(Path(run_dir) / TRAINING_LOG)
    else:
        history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
    return TrainingResult(history, seconds, resumed_from)


def require_finite(history: dict[str, list[float]]) -> None:
    """Raise ``NonFiniteTrainingError`` if any recorded loss is NaN or infinite.

    ``train`` stops at the first such batch (Keras's ``TerminateOnNaN``); this turns
    that silent stop into an error, so the run is marked failed rather than finished.
    """
    for name, values in history.items():
        if name.endswith("loss") and not np.isfinite(values).all():
            raise NonFiniteTrainingError(
                f"Training diverged: {name} reached {values[-1]} by epoch {len(values)}. "
                "Try a smaller learning_rate."
            )
