"""Everything ``fit`` needs besides the model: seeding, precision, the optimizer, the
training batches, the validation data, and the state a resumed training starts from."""

import csv
import hashlib
import json
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from utils import cache
from utils.backend import keras, tf
from utils.choices import DISTRIBUTIONS, PRECISIONS

# CPU features that run bfloat16 arithmetic natively (Intel AMX, AVX-512 BF16).
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Keras's CSVLogger appends each completed epoch here, so the history survives interruption.
TRAINING_LOG = "training_log.csv"
# Keras's BackupAndRestore keeps the last completed epoch here, inside the run folder.
CHECKPOINT = "checkpoint"
# The second phase of a pretrained network's training (fine-tuning) checkpoints here.
FINE_TUNE_CHECKPOINT = "checkpoint-fine-tune"
# NVIDIA GPUs compute in bfloat16 natively from compute capability 8.0 (Ampere) on.
BF16_GPU_CAPABILITY = (8, 0)


class NonFiniteTrainingError(RuntimeError):
    """Training produced a loss that is not a finite number; its model is not worth using."""


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic: the two lines
    of the chapter's setup cell, for the tests that train as the chapter does."""
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


def distribution_strategy(distribute: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy to build, compile and train the model under.

    ``none``: TensorFlow's default, one device. ``mirrored``: ``MirroredStrategy``, a copy
    of the model on every GPU (or, without GPUs, on every logical CPU device, see
    ``utils.backend``), each taking its share of every batch, with the gradients summed
    across copies. ``auto``: ``mirrored`` with two or more GPUs, else ``none``.
    ``batch_size`` stays the global batch, split between the copies.
    """
    if distribute not in DISTRIBUTIONS:
        raise ValueError(
            f"Unknown distribute {distribute!r}; choose one of: {', '.join(DISTRIBUTIONS)}"
        )
    gpus = tf.config.list_logical_devices("GPU")
    if distribute == "none" or (distribute == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()
    devices = gpus or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Gradient steps in one pass over ``num_images``."""
    return -(-num_images // batch_size)


def epochs_for_budget(num_epochs: int, training_budget: int, num_images: int) -> int:
    """Epochs to train: ``num_epochs``, but never more than show ``training_budget`` images.

    A budget in images seen makes a recipe take about the same time on any data size: with
    ``num_epochs`` 90 and a budget of 87,390, the 971-painting subset trains 90 epochs and
    the 4,000 Kaggle paintings 21. The epochs round down, so the budget is never exceeded,
    except that at least one epoch is trained. A budget of 0 sets no limit.
    """
    if not training_budget:
        return num_epochs
    return max(1, min(num_epochs, training_budget // num_images))


def transfer_epochs(
    head_epochs: int, fine_tune_epochs: int, training_budget: int, num_images: int
) -> tuple[int, int]:
    """Section 7's epochs: ``(head_only_epochs, transfer_epochs)``, the epochs training the
    new head alone and the epochs in all (``epochs_for_budget`` of ``head_epochs`` +
    ``fine_tune_epochs``).

    The budget is in images, so on more paintings it buys fewer epochs, and the head's come
    first: when fine-tuning was asked for and the budget leaves it none, this says so in one
    line (a warning) rather than skipping it silently.
    """
    total = epochs_for_budget(head_epochs + fine_tune_epochs, training_budget, num_images)
    head_only = min(head_epochs, total)
    if fine_tune_epochs and head_only == total:
        warnings.warn(
            f"training_budget {training_budget:,} allows {total} epoch(s) of {num_images:,} "
            f"paintings, all of them for the head (head_epochs {head_epochs}): nothing is "
            f"fine-tuned, although fine_tune_epochs is {fine_tune_epochs}. Lower head_epochs "
            "or raise training_budget.",
            stacklevel=2,
        )
    return head_only, total


def centre_crop(X: np.ndarray, crop_size: int) -> np.ndarray:
    """The central ``crop_size`` square of every image in ``X``."""
    offset_y = (X.shape[1] - crop_size) // 2
    offset_x = (X.shape[2] - crop_size) // 2
    return X[:, offset_y : offset_y + crop_size, offset_x : offset_x + crop_size]


def epoch_order(num_images: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the training images: a permutation that
    depends only on ``seed`` and ``epoch``, so a resumed run repeats it exactly."""
    return np.random.default_rng([seed, epoch]).permutation(num_images)


class Augmentation(NamedTuple):
    """The random choices ``augment`` makes for one batch: crop corners and colour factors."""

    tops: np.ndarray | None
    lefts: np.ndarray | None
    factors: np.ndarray | None


def draw_augmentation(
    rng: np.random.Generator,
    count: int,
    height: int,
    width: int,
    crop_size: int,
    colour_jitter: float,
) -> Augmentation:
    """Draw from ``rng`` the crops and colour factors of ``count`` images, in ``augment``'s
    order: tops, lefts, then the brightness, contrast and saturation factors."""
    tops = lefts = factors = None
    if crop_size:
        tops = rng.integers(0, height - crop_size + 1, count)
        lefts = rng.integers(0, width - crop_size + 1, count)
    if colour_jitter:
        factors = rng.uniform(1 - colour_jitter, 1 + colour_jitter, (3, count, 1, 1, 1))
    return Augmentation(tops, lefts, factors)


def apply_augmentation(images: np.ndarray, drawn: Augmentation, crop_size: int) -> np.ndarray:
    """``images`` cropped and colour-jittered as ``drawn`` says (uint8 in, uint8 out)."""
    if drawn.tops is not None:
        images = np.stack(
            [
                image[top : top + crop_size, left : left + crop_size]
                for image, top, left in zip(images, drawn.tops, drawn.lefts, strict=True)
            ]
        )
    if drawn.factors is not None:
        factors = drawn.factors.astype(np.float32)
        pixels = images.astype(np.float32) * factors[0]
        mean = pixels.mean(axis=(1, 2, 3), keepdims=True)
        pixels = mean + (pixels - mean) * factors[1]
        grey = pixels.mean(axis=-1, keepdims=True)
        pixels = grey + (pixels - grey) * factors[2]
        images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return images


def augment(
    images: np.ndarray, rng: np.random.Generator, crop_size: int, colour_jitter: float
) -> np.ndarray:
    """A batch of uint8 images, each randomly cropped and colour-jittered by ``rng``.

    Cropping a ``crop_size`` window from a larger image keeps more brushwork per pixel
    than resizing the whole painting down, and every epoch shows different windows
    (``crop_size`` 0 keeps the whole image). ``colour_jitter`` is the largest relative
    change of brightness, contrast and saturation (0 for none).
    """
    count, height, width = images.shape[:3]
    drawn = draw_augmentation(rng, count, height, width, crop_size, colour_jitter)
    return apply_augmentation(images, drawn, crop_size)


def training_batches(
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    num_epochs: int,
    seed: int,
    first_epoch: int = 0,
    crop_size: int = 0,
    colour_jitter: float = 0.0,
) -> tf.data.Dataset:
    """Every training batch from epoch ``first_epoch`` to the last, as one stream.

    Batches are (uint8 images, one-hot labels). Each epoch visits the images in
    ``epoch_order`` and augments them (``augment``) with a generator seeded by ``seed``
    and the epoch alone, so epoch *k* gets the same batches whether the run started at
    epoch 0 or resumed at *k*. Pass it to ``fit`` with ``steps_per_epoch``.
    """
    size = crop_size or X.shape[1]
    labels = keras.utils.to_categorical(y, num_classes).astype(np.float32)

    def batches():
        for epoch in range(first_epoch, num_epochs):
            order = epoch_order(len(y), seed, epoch)
            rng = np.random.default_rng([seed, epoch, 1])
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                yield augment(X[chosen], rng, crop_size, colour_jitter), labels[chosen]

    signature = (
        tf.TensorSpec((None, size, size, X.shape[3]), tf.uint8),
        tf.TensorSpec((None, num_classes), tf.float32),
    )
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)


class TrainingBatches(keras.utils.PyDataset):
    """One epoch of training batches for ``fit``, as ``training_batches`` makes them.

    Batch ``index`` is a function of ``seed``, ``index`` and ``epoch`` alone: the paintings
    of ``epoch_order`` from ``index * batch_size`` on, augmented (``augment``) by the
    generator seeded with ``seed`` and the epoch, advanced over the batches before it. Keras
    reads a batch or two before training starts, and may read again; neither changes any
    batch. ``SetEpoch`` sets ``epoch`` from Keras's own epoch number, so a resumed run shows
    epoch *k* exactly the batches it would have shown without the interruption. One worker:
    batches are made when asked for, never ahead into an epoch not yet set.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        num_classes: int,
        batch_size: int,
        seed: int,
        crop_size: int = 0,
        colour_jitter: float = 0.0,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.X, self.y, self.batch_size, self.seed = X, y, batch_size, seed
        self.crop_size, self.colour_jitter = crop_size, colour_jitter
        self.labels = keras.utils.to_categorical(y, num_classes).astype(np.float32)
        self.epoch = 0
        self._plan: tuple[int, np.ndarray, list[Augmentation]] | None = None

    def __len__(self) -> int:
        return steps_per_epoch(len(self.y), self.batch_size)

    def _epoch_plan(self) -> tuple[np.ndarray, list[Augmentation]]:
        """The epoch's order and every batch's random choices, drawn once per epoch."""
        if self._plan is None or self._plan[0] != self.epoch:
            order = epoch_order(len(self.y), self.seed, self.epoch)
            rng = np.random.default_rng([self.seed, self.epoch, 1])
            height, width = self.X.shape[1:3]
            drawn = [
                draw_augmentation(
                    rng,
                    len(order[start : start + self.batch_size]),
                    height,
                    width,
                    self.crop_size,
                    self.colour_jitter,
                )
                for start in range(0, len(order), self.batch_size)
            ]
            self._plan = (self.epoch, order, drawn)
        return self._plan[1], self._plan[2]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        order, drawn = self._epoch_plan()
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        images = apply_augmentation(np.asarray(self.X[chosen]), drawn[index], self.crop_size)
        return np.ascontiguousarray(images), self.labels[chosen]


class ImageBatches(keras.utils.PyDataset):
    """The images of ``X`` in order, ``batch_size`` at a time, for ``predict``: mirrored left
    to right with ``mirrored``. Each batch is cut from ``X`` when asked for, so a
    memory-mapped ``X`` is never read into memory whole."""

    def __init__(self, X: np.ndarray, batch_size: int = 64, mirrored: bool = False) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.X, self.batch_size, self.mirrored = X, batch_size, mirrored

    def __len__(self) -> int:
        return steps_per_epoch(len(self.X), self.batch_size)

    def __getitem__(self, index: int) -> np.ndarray:
        images = np.asarray(self.X[index * self.batch_size : (index + 1) * self.batch_size])
        return np.ascontiguousarray(images[:, :, ::-1] if self.mirrored else images)


class FeatureBatches(keras.utils.PyDataset):
    """``TrainingBatches`` for a head trained on features computed once, as
    ``feature_batches`` makes them: each painting once per epoch, in ``epoch_order``, as
    itself or mirrored (``flipped_features``) by a coin that depends only on ``seed`` and
    the epoch. ``SetEpoch`` sets ``epoch``."""

    def __init__(
        self,
        features: np.ndarray,
        flipped_features: np.ndarray,
        y: np.ndarray,
        num_classes: int,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.features, self.flipped_features = features, flipped_features
        self.y, self.batch_size, self.seed = y, batch_size, seed
        self.labels = keras.utils.to_categorical(y, num_classes).astype(np.float32)
        self.epoch = 0

    def __len__(self) -> int:
        return steps_per_epoch(len(self.y), self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        order = epoch_order(len(self.y), self.seed, self.epoch)
        mirrored = np.random.default_rng([self.seed, self.epoch, 1]).random(len(self.y)) < 0.5
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        features = np.where(
            mirrored[chosen, None], self.flipped_features[chosen], self.features[chosen]
        )
        return features, self.labels[chosen]


class SetEpoch(keras.callbacks.Callback):
    """Tells a ``TrainingBatches`` or ``FeatureBatches`` which epoch Keras is starting.

    Keras's own epoch number is the one to trust: after a resume it starts where the
    checkpoint ended, and ``PyDataset.on_epoch_end`` is also called once before the first
    epoch, so a counter kept by the data set would drift.
    """

    def __init__(self, batches: "TrainingBatches | FeatureBatches") -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Set the data set's epoch before Keras asks for its first batch."""
        self.batches.epoch = epoch


def feature_batches(
    features: np.ndarray,
    flipped_features: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    num_epochs: int,
    seed: int,
    first_epoch: int = 0,
) -> tf.data.Dataset:
    """``training_batches`` for a head trained on features computed once: every epoch shows
    each painting once, in ``epoch_order``, as itself or mirrored (``flipped_features``) at
    random, as a ``RandomFlip`` layer would. The choices depend only on ``seed`` and the
    epoch, so a resumed run repeats them."""
    labels = keras.utils.to_categorical(y, num_classes).astype(np.float32)

    def batches():
        for epoch in range(first_epoch, num_epochs):
            order = epoch_order(len(y), seed, epoch)
            mirrored = np.random.default_rng([seed, epoch, 1]).random(len(y)) < 0.5
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                yield (
                    np.where(mirrored[chosen, None], flipped_features[chosen], features[chosen]),
                    labels[chosen],
                )

    signature = (
        tf.TensorSpec((None, features.shape[1]), tf.float32),
        tf.TensorSpec((None, num_classes), tf.float32),
    )
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)


class EpochRandomness(keras.callbacks.Callback):
    """Sets the random state of every layer that draws random numbers while training
    (``RandomFlip``, ``Dropout``) from the seed and the epoch alone, at each epoch's start.

    Keras's checkpoints keep weights and the optimizer but not these states, so without
    this a resumed epoch would flip and drop different pixels than the uninterrupted run.
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Give layer ``i``'s generator the state (seed + i, a per-epoch counter)."""
        for index, state in enumerate(random_states(self.model)):
            value = np.array([self.seed + index, epoch << 20])
            state.assign(value.astype(state.dtype))


def bookkeeping(
    batches: "TrainingBatches | FeatureBatches", seed: int, checkpoint: Path, resume: bool
) -> keras.callbacks.CallbackList:
    """The project's callbacks for one ``fit``, as one entry of its ``callbacks`` list:
    ``SetEpoch`` (tells ``batches`` the epoch Keras starts), ``EpochRandomness`` (flips and
    dropout drawn from the seed and the epoch) and ``BackupAndRestore`` (a checkpoint in
    ``checkpoint`` after every epoch, safe from a full disk, restored only with ``resume``).
    Together they make a resumed run end with the weights of an uninterrupted one."""
    return keras.callbacks.CallbackList(
        [SetEpoch(batches), EpochRandomness(seed), BackupAndRestore(checkpoint, resume)]
    )


CHECKPOINT_RECORD = "training_metadata.json"


class CheckpointMismatchError(ValueError):
    """A resume found a checkpoint saved by another network or optimizer than this one."""


def network_fingerprint(model: keras.Model) -> str:
    """A short hash of what a checkpoint fits: the layers' classes and settings, the weights'
    shapes and the optimizer's settings (names left out, which Keras numbers per session)."""

    def unnamed(value: object) -> object:
        if isinstance(value, dict):
            return {k: unnamed(v) for k, v in value.items() if k != "name"}
        if isinstance(value, list | tuple):
            return [unnamed(v) for v in value]
        return value

    def settings(layer: keras.layers.Layer) -> object:
        try:
            return unnamed(layer.get_config())
        except NotImplementedError:  # a layer that cannot describe itself: its class alone
            return None

    optimizer = model.optimizer
    described = {
        "layers": [[type(layer).__name__, settings(layer)] for layer in model.layers],
        "weights": [list(weight.shape) for weight in model.weights],
        "optimizer": optimizer and [type(optimizer).__name__, unnamed(optimizer.get_config())],
    }
    text = json.dumps(described, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore``, made safe for students and against a full disk.

    - A fresh ``fit`` (``resume`` false, as in every run but ``make resume``) first removes
      the folder's checkpoints and trains from its first epoch: a network changed in its cell
      and re-run is a new network, and no earlier network's weights reach it.
    - With ``resume`` (``make resume`` sets it) it restores the newest checkpoint whose file
      reads back whole (``usable_checkpoint``), else the previous one; none is a fresh start.
      Each checkpoint records the network's fingerprint (``network_fingerprint``), and one
      saved by another network or optimizer is refused in one line
      (``CheckpointMismatchError``), never loaded into this one.
    - Each epoch's weights go to a file of their own (``epoch-<k>.weights.h5``), written whole
      before ``training_metadata.json`` is replaced (atomically) to name it. The previous
      epoch's file stays, named in the record too, until the next one is whole: a disk that
      fills up while writing leaves the last good checkpoint in place, never a file cut short
      that every resume would trip over.
    - It never deletes the checkpoint when training ends: the notebook does, once the model
      and its metrics are saved (``remove_checkpoints``), so a failure in between can still be
      resumed.
    - It forgets the epoch it restored when ``fit`` ends. Keras 3.15 restores by setting the
      model's ``_initial_epoch`` and never clears it, so a second ``fit`` (the fine-tuning
      phase of a pretrained network) would start counting from the restored epoch.
    """

    def __init__(self, backup_dir: Path, resume: bool = False) -> None:
        super().__init__(str(backup_dir), delete_checkpoint=False)
        self.resume = resume
        self.fingerprint = ""

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start afresh, or (``resume``) restore the newest usable checkpoint of this network."""
        folder = Path(self.backup_dir)
        self.fingerprint = network_fingerprint(self.model)
        if not self.resume:
            shutil.rmtree(folder, ignore_errors=True)
            return
        found = usable_checkpoint(folder)
        if found is None:
            return
        saved_by = (_checkpoint_record(folder) or {}).get("network", self.fingerprint)
        if saved_by != self.fingerprint:
            raise CheckpointMismatchError(
                f"The checkpoint in {folder} was saved by another network or optimizer than "
                "this one, so it is not restored. make resume continues the network that was "
                "interrupted, unchanged; to train a changed one, start a new run with make run."
            )
        epoch, weights = found
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        self.model._initial_epoch = epoch

    def _save_model(self) -> None:
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        previous = _checkpoint_record(folder)
        name = f"epoch-{self._current_epoch}.weights.h5"
        size = _weights_file_size(self.model, folder / previous["weights"] if previous else None)
        _reserve_room(folder / name, size)
        self.model.save_weights(str(folder / name), overwrite=True)
        _sync(folder / name)
        record = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "weights": name,
            "network": self.fingerprint,
        }
        if previous and previous.get("weights") != name:
            record["previous"] = {"epoch": previous["epoch"], "weights": previous["weights"]}
        temporary = folder / f"{CHECKPOINT_RECORD}.tmp"
        temporary.write_text(json.dumps(record))
        _sync(temporary)
        temporary.replace(folder / CHECKPOINT_RECORD)
        kept = {name, record.get("previous", {}).get("weights")}
        for stale in folder.glob("*.weights.h5"):
            if stale.name not in kept:
                stale.unlink(missing_ok=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Forget the restored epoch; the checkpoint stays for the notebook to remove."""
        self.model._initial_epoch = None


HDF5_BYTES_PER_ARRAY = 4096  # what a weights file holds besides an array's values, at most


def _weights_file_size(model: keras.Model, previous: Path | None) -> int:
    """Bytes the next checkpoint will take: the previous one's size, or (for the first)
    every variable's values with room for the file's own bookkeeping."""
    if previous is not None and previous.is_file():
        return previous.stat().st_size
    variables = list(model.weights)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    values = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
    return values + HDF5_BYTES_PER_ARRAY * (len(variables) + 16)


def _reserve_room(path: Path, size: int) -> None:
    """Claim ``size`` bytes on the disk for ``path`` before h5py writes it there, or raise
    ``OSError``: ENOSPC on a full disk, EFBIG past a file-size limit (``ulimit -f``).

    A write that fails for lack of room inside HDF5 ends in a segmentation fault of the whole
    process (Keras 3.15 with h5py 3, measured: tests/test_training.py), which no resume
    could report; failing here first is an ordinary error. The claimed blocks are freed
    when h5py truncates the file to write it, so the weights find them free.
    """
    try:
        with open(path, "wb") as file:
            file.truncate(size)
        cache.reserve(path)
    except OSError:
        path.unlink(missing_ok=True)
        raise


def _sync(path: Path) -> None:
    """Flush ``path`` to the disk, so that a file named in a record is really there."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _checkpoint_record(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / CHECKPOINT_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        return None
    record.setdefault("weights", "latest.weights.h5")  # as Keras's own callback names it
    return record


def _reads_back_whole(path: Path) -> bool:
    """Whether every array of a ``.weights.h5`` file reads back (a file cut short by a full
    disk opens, but fails on the arrays it lacks)."""

    def read(_: str, item: object) -> None:
        if isinstance(item, h5py.Dataset):
            item[()]

    try:
        with h5py.File(path, "r") as weights:
            weights.visititems(read)
    except Exception:  # h5py raises OSError, RuntimeError or KeyError for a damaged file
        return False
    return True


def usable_checkpoint(folder: Path) -> tuple[int, Path] | None:
    """The epochs completed and the weights file of the newest checkpoint in ``folder`` that
    reads back whole, falling back to the one before it; None when there is neither."""
    record = _checkpoint_record(Path(folder))
    if record is None:
        return None
    candidates = [(record["epoch"], record["weights"])]
    if isinstance(record.get("previous"), dict):
        candidates.append((record["previous"]["epoch"], record["previous"]["weights"]))
    for epoch, name in candidates:
        path = Path(folder) / str(name)
        if path.is_file() and _reads_back_whole(path):
            return int(epoch), path
    return None


# Where the chapter's transfer learning (section 7) keeps its checkpoints and training log.
TRANSFER_DIR = "transfer"


def remove_checkpoints(run_dir: Path) -> None:
    """Delete a finished run's checkpoints, the run's own and those of its transfer learning
    (``transfer/``): called once its model and metrics are saved."""
    for folder in (Path(run_dir), Path(run_dir) / TRANSFER_DIR):
        for name in (CHECKPOINT, FINE_TUNE_CHECKPOINT):
            shutil.rmtree(folder / name, ignore_errors=True)


def random_states(model: keras.Model) -> list[keras.Variable]:
    """The random-number states of ``model``'s layers: its variables that are not weights."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def validation_data(
    X_val: np.ndarray, y_val: np.ndarray, num_classes: int, crop_size: int = 0, batch_size: int = 32
) -> tf.data.Dataset:
    """What ``fit`` measures after each epoch: batches of the images (centre crops with
    ``crop_size``, as the network's input is that size) and one-hot labels.

    Batches are cut from ``X_val`` as they are needed, so a memory-mapped ``X_val`` is
    never read into memory whole.
    """
    size = crop_size or X_val.shape[1]

    def batches():
        for start in range(0, len(X_val), batch_size):
            images = X_val[start : start + batch_size]
            if crop_size:
                images = centre_crop(images, crop_size)
            labels = keras.utils.to_categorical(y_val[start : start + batch_size], num_classes)
            yield np.ascontiguousarray(images), labels.astype(np.float32)

    signature = (
        tf.TensorSpec((None, size, size, X_val.shape[3]), tf.uint8),
        tf.TensorSpec((None, num_classes), tf.float32),
    )
    # A known length: Keras then knows where validation ends and does not warn that the
    # input "ran out of data" after the first epoch.
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    num_batches = steps_per_epoch(len(X_val), batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(2)


def _checkpointed_epochs(folder: Path) -> int:
    found = usable_checkpoint(folder)
    return found[0] if found else 0


def resume_point(run_dir: Path) -> int:
    """How many epochs an interrupted training in ``run_dir`` completed: 0 for a fresh run.

    Keras's ``BackupAndRestore`` keeps the last completed epoch in ``run_dir/checkpoint``
    (and, for a pretrained network's fine-tuning phase, in ``checkpoint-fine-tune``; its
    epochs count from the start of the whole training). ``training_log.csv`` is cut back
    to that many rows, since a run stopped between the two writes at an epoch's end has
    logged one epoch more than it checkpointed.
    """
    completed = max(
        _checkpointed_epochs(Path(run_dir) / folder)
        for folder in (CHECKPOINT, FINE_TUNE_CHECKPOINT)
    )
    log = Path(run_dir) / TRAINING_LOG
    if log.exists():
        lines = log.read_text().splitlines(keepends=True)
        log.write_text("".join(lines[: 1 + completed]))
    return completed


def read_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch metrics that Keras's ``CSVLogger`` wrote to ``path``, by name.

    ``CSVLogger`` writes validation columns even when there was no validation, filled
    with ``NA``; columns with no value at all are left out, other ``NA`` become NaN.
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    return {
        name: [float("nan") if row[name] == "NA" else float(row[name]) for row in rows]
        for name in names
        if any(row[name] != "NA" for row in rows)
    }


def logged_history(run_dir: Path, first_epoch: int) -> dict[str, list[float]]:
    """The history of the epochs trained before this ``fit``: those an interrupted run
    completed (``first_epoch``, from ``resume_point``), read from its training log.

    A fresh start (``first_epoch`` 0) removes the log instead, so that re-running an edited
    network's ``fit`` never mixes two networks in one history.
    """
    log = Path(run_dir) / TRAINING_LOG
    if not first_epoch:
        log.unlink(missing_ok=True)
        return {}
    return read_history(log)


def earlier_epochs(run_dir: Path, resume: bool) -> tuple[int, dict[str, list[float]]]:
    """Where this ``fit`` starts and what came before it: with ``resume`` (``make resume``),
    the epochs an interrupted training in ``run_dir`` completed (``resume_point``) and their
    logged history; else 0 and an empty history, the old log removed (``logged_history``)."""
    first_epoch = resume_point(run_dir) if resume else 0
    return first_epoch, logged_history(run_dir, first_epoch)


def join_histories(*parts: dict[str, list[float]]) -> dict[str, list[float]]:
    """One history from consecutive ones (``History.history`` dictionaries or
    ``logged_history``), each metric's epochs in order, the metrics sorted by name as
    Keras's ``CSVLogger`` writes them."""
    names = sorted({name for part in parts for name in part})
    return {name: [float(v) for part in parts for v in part.get(name, [])] for name in names}


def phases(num_epochs: int, head_epochs: int) -> list[str]:
    """Each epoch's phase for ``history.csv``: ``head`` for the first ``head_epochs`` (the
    new head on the frozen base), ``fine-tune`` for the rest."""
    return ["head" if epoch < head_epochs else "fine-tune" for epoch in range(num_epochs)]


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
