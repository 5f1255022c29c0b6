"""The notebook's parameters: what its parameters cell declares, and values checked against it.

Every value from ``-p``, ``-f`` files and sweep files passes ``check`` before it reaches
papermill, which writes it into the notebook as code. A value must have the type its
parameter is declared with (``data_dir: str = ""``): strings for ``str``, integers (not
booleans) for ``int``, integers or floats for ``float``, booleans for ``bool``. Nothing
else passes, bytes, sets, lists, mappings and ``None`` included; ``None`` only stands for
the empty default of a parameter whose default is empty. A string of any content reaches
the notebook as exactly that string.
"""

import math
import os
import reprlib
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import papermill
import yaml

from utils import choices, paths, runs

TYPES = ("str", "int", "float", "bool")
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


class ParameterError(ValueError):
    """A parameter value the notebook cannot take; the message names it and says why."""


@dataclass(frozen=True)
class Declared:
    """One parameter as the parameters cell declares it: its type and its default value."""

    type_name: str
    default: object


def declared(notebook: Path) -> dict[str, Declared]:
    """The notebook's parameters, in the order of its parameters cell."""
    found = {}
    for name, spec in papermill.inspect_notebook(str(notebook)).items():
        default = yaml.safe_load(spec["default"])
        type_name = spec["inferred_type_name"]
        found[name] = Declared(type_name if type_name in TYPES else type(default).__name__, default)
    return found


def _describe(value: object) -> str:
    return f"{type(value).__name__} {_SHORT.repr(value)}"


def check(name: str, value: object, declaration: Declared) -> object:
    """``value`` if it has the declared type (an int given for a float becomes a float).

    Raises ``ParameterError`` naming the parameter, its declared type and the value.
    """
    kind = declaration.type_name
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind in ("int", "float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value) if kind == "float" else value
    if kind == "float" and isinstance(value, float):
        return value
    if value is None and declaration.default in ("", None):
        return declaration.default
    raise ParameterError(
        f"Parameter {name} is declared {kind} in the notebook, but got {_describe(value)}."
    )


def parse_text(name: str, text: str, declaration: Declared) -> object:
    """Read a ``-p NAME VALUE`` value as the declared type: ``-p run_name 2024`` is a string."""
    kind = declaration.type_name
    lowered = text.strip().lower()
    if kind == "bool" and lowered in ("true", "false"):
        return lowered == "true"
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        pass
    if kind == "str":
        return text
    raise ParameterError(
        f"Parameter {name} is declared {kind} in the notebook, but got {_SHORT.repr(text)}"
        + (" (true or false)." if kind == "bool" else ".")
    )


def refuse_unknown(names: Iterable[object], known: Mapping[str, Declared]) -> None:
    """Raise ``ParameterError`` if any name is not a parameter the notebook declares."""
    unknown = sorted(str(name) for name in names if name not in known)
    if unknown:
        raise ParameterError(
            f"Unknown parameter(s): {', '.join(unknown)}. "
            f"The notebook declares: {', '.join(known)}."
        )


def check_all(values: Mapping[object, object], known: Mapping[str, Declared]) -> dict[str, object]:
    """Every value checked against its declaration; unknown names refused first."""
    refuse_unknown(values, known)
    return {name: check(name, value, known[name]) for name, value in values.items()}


# Far more than any parameters file needs: /dev/zero or a huge file is refused, not read.
MAX_FILE_BYTES = 1_000_000


def _read_small_file(path: Path) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``, read once. A FIFO, a device
    or a folder is refused without waiting on it (``ValueError``)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError("not a regular file (a folder, FIFO or device)")
        if status.st_size > MAX_FILE_BYTES:
            raise ValueError(f"{status.st_size:,} bytes, more than a parameters file may hold")
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # it grew while being read
            raise ValueError(
                f"more than {MAX_FILE_BYTES:,} bytes, more than a parameters file may hold"
            )
        return data
    finally:
        os.close(descriptor)


def read_yaml(path: str | Path) -> object:
    """A YAML file's content, with one clear message for a missing or malformed file.

    Only plain YAML is read (``yaml.safe_load``): tags that build Python objects are refused.
    """
    resolved = paths.resolve(path)
    try:
        text = _read_small_file(resolved).decode("utf-8")
    except FileNotFoundError:
        raise ParameterError(f"Parameters file not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ParameterError(f"Cannot read {path}: {error}") from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ParameterError(f"{path} is nested too deeply to be parameters") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ParameterError(f"{path} is not valid parameter YAML{line}: {problem}") from None


def read_parameters_file(path: str | Path, known: Mapping[str, Declared]) -> dict[str, object]:
    """The checked parameters of one ``-f`` file: a mapping of names to values."""
    loaded = read_yaml(path)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParameterError(f"{path} must hold a mapping of parameter names to values.")
    try:
        return check_all(loaded, known)
    except ParameterError as error:
        raise ParameterError(f"{path}: {error}") from None


def collect(
    files: list[str], pairs: list[tuple[str, str]], known: Mapping[str, Declared]
) -> dict[str, object]:
    """Merge ``-f`` files, then ``-p`` pairs (later ones win), every value checked."""
    collected: dict[str, object] = {}
    for file in files:
        collected.update(read_parameters_file(file, known))
    refuse_unknown([name for name, _ in pairs], known)
    collected.update({name: parse_text(name, text, known[name]) for name, text in pairs})
    return collected


# Every setting of the chapter's parameters cell, in its order. The cell itself holds only
# literals (papermill injects its values after it), so the names are listed here too, and a
# test keeps the two lists in step.
SETTINGS = (
    "data_dir",
    "image_size",
    "model",
    "num_epochs",
    "learning_rate",
    "seed",
    "run_name",
    "painting",
    "suspected_artist",
    "batch_size",
    "optimizer",
    "filters",
    "resize_mode",
    "crop_size",
    "colour_jitter",
    "label_smoothing",
    "temperature",
    "cosine_decay",
    "weights",
    "fine_tune",
    "head_epochs",
    "fine_tune_epochs",
    "unfreeze_blocks",
    "middle_block",
    "fine_tune_learning_rate",
    "distribute",
    "precision",
    "training_budget",
    "data_mode",
    "validation_split",
    "holdout_fold",
    "holdout_folds",
    "run_folder",
    "resume",
    "verbose",
)


def settings_in(namespace: Mapping[str, object]) -> dict[str, object]:
    """The chapter's settings as ``namespace`` (the notebook's ``globals()``) holds them, in
    the parameters cell's order; a setting missing from it is named in one line."""
    missing = [name for name in SETTINGS if name not in namespace]
    if missing:
        raise ParameterError(
            f"The parameters cell lacks {', '.join(missing)}: run it, or restore its lines."
        )
    return {name: namespace[name] for name in SETTINGS}


# The settings ``validate`` reads. The runner checks a notebook's settings before starting a
# kernel when the notebook declares all of them (the chapter does).
CHECKED = (
    "model",
    "resize_mode",
    "precision",
    "optimizer",
    "distribute",
    "data_mode",
    "image_size",
    "crop_size",
    "filters",
    "num_epochs",
    "training_budget",
    "batch_size",
    "learning_rate",
    "fine_tune_learning_rate",
    "head_epochs",
    "fine_tune_epochs",
    "unfreeze_blocks",
    "middle_block",
    "colour_jitter",
    "label_smoothing",
    "temperature",
    "validation_split",
    "holdout_folds",
    "holdout_fold",
    "seed",
    "verbose",
    "run_name",
)


def _problems(settings: Mapping[str, object]) -> list[str]:
    problems = []

    def need(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    allowed_values = {
        "model": choices.MODEL_NAMES,
        "resize_mode": choices.RESIZE_MODES,
        "precision": choices.PRECISIONS,
        "optimizer": choices.OPTIMIZERS,
        "distribute": choices.DISTRIBUTIONS,
        "data_mode": choices.DATA_MODES,
    }
    for name, allowed in allowed_values.items():
        need(settings[name] in allowed, f"{name} must be one of {', '.join(allowed)}")
    image_size, crop_size = settings["image_size"], settings["crop_size"]
    need(
        choices.MIN_IMAGE_SIZE <= image_size <= choices.MAX_IMAGE_SIZE,
        f"image_size must lie between {choices.MIN_IMAGE_SIZE} and {choices.MAX_IMAGE_SIZE}",
    )
    need(
        crop_size == 0 or 8 <= crop_size <= image_size,
        f"crop_size must be 0 (off) or lie between 8 and image_size ({image_size}), not "
        f"{crop_size}: with a smaller image_size, set crop_size too",
    )
    smallest = choices.MIN_INPUT_SIZE.get(settings["model"], 0)
    need(
        (crop_size or image_size) >= smallest,
        f"model {settings['model']} needs images of at least {smallest} px "
        "(crop_size, or image_size without crops)",
    )
    need(1 <= settings["filters"] <= 512, "filters must lie between 1 and 512")
    epochs, budget = f"1 and {choices.MAX_EPOCHS:,}", f"{choices.MAX_TRAINING_BUDGET:,}"
    need(1 <= settings["num_epochs"] <= choices.MAX_EPOCHS, f"num_epochs must lie between {epochs}")
    need(
        0 <= settings["training_budget"] <= choices.MAX_TRAINING_BUDGET,
        f"training_budget must be 0 (off) or a number of images up to {budget}",
    )
    need(
        1 <= settings["batch_size"] <= choices.MAX_BATCH_SIZE,
        f"batch_size must lie between 1 and {choices.MAX_BATCH_SIZE:,}",
    )
    for name in ("learning_rate", "fine_tune_learning_rate"):
        rate = settings[name]
        need(math.isfinite(rate) and rate > 0, f"{name} must be a positive number")
    need(
        1 <= settings["head_epochs"] <= choices.MAX_EPOCHS, f"head_epochs must lie between {epochs}"
    )
    need(
        0 <= settings["fine_tune_epochs"] <= choices.MAX_EPOCHS,
        f"fine_tune_epochs must lie between 0 and {choices.MAX_EPOCHS:,}",
    )
    need(
        0 <= settings["unfreeze_blocks"] <= choices.PRETRAINED_BLOCKS,
        f"unfreeze_blocks must lie between 0 and {choices.PRETRAINED_BLOCKS}",
    )
    need(
        settings["middle_block"] == 0 or settings["middle_block"] in choices.MIDDLE_BLOCKS,
        "middle_block must be 0 (none) or one of EfficientNet-Lite0's blocks with a residual "
        f"sum: {', '.join(map(str, choices.MIDDLE_BLOCKS))}",
    )
    for name in ("colour_jitter", "label_smoothing"):
        need(0 <= settings[name] < 1, f"{name} must lie in [0, 1)")
    need(
        choices.MIN_TEMPERATURE <= settings["temperature"] <= choices.MAX_TEMPERATURE,
        f"temperature must lie between {choices.MIN_TEMPERATURE} and "
        f"{choices.MAX_TEMPERATURE} (1: the probabilities as the network gives them)",
    )
    if choices.trains_on_features(settings["unfreeze_blocks"]):
        need(
            crop_size == 0 and settings["colour_jitter"] == 0,
            "with unfreeze_blocks 0, section 7 trains its head on features computed once from "
            "the whole paintings: crop_size and colour_jitter must be 0",
        )
        need(
            settings["fine_tune_epochs"] == 0,
            "with unfreeze_blocks 0 nothing is fine-tuned: fine_tune_epochs must be 0",
        )
    if settings["model"] in choices.PRETRAINED:
        need(
            settings["weights"] in ("imagenet", ""),
            f"{settings['model']} takes its ImageNet weights from the installed package: "
            "weights must be imagenet, or empty for random weights",
        )
    need(0 < settings["validation_split"] < 1, "validation_split must lie between 0 and 1")
    folds = settings["holdout_folds"]
    need(folds >= 2, "holdout_folds must be at least 2")
    need(
        0 <= settings["holdout_fold"] <= folds, "holdout_fold must lie between 0 and holdout_folds"
    )
    need(0 <= settings["seed"] < 2**32, "seed must lie between 0 and 2**32 - 1")
    need(settings["verbose"] in (0, 1, 2), "verbose must be 0, 1 or 2")
    if settings["run_name"]:
        try:
            runs.check_run_name(settings["run_name"])
        except ValueError as error:
            problems.append(str(error))
    return problems


def validate(settings: Mapping[str, object]) -> None:
    """Check the notebook's settings against their ranges and choices, before any data loads.

    Raises ``ParameterError`` with every problem found, in one line.
    """
    problems = _problems(settings)
    if problems:
        raise ParameterError("Invalid parameters: " + "; ".join(problems) + ".")


def checked_settings(namespace: Mapping[str, object]) -> dict[str, object]:
    """The chapter's settings from ``namespace`` (``settings_in``), each checked (``validate``):
    a missing, mistyped or out-of-range setting stops here, in one line."""
    settings = settings_in(namespace)
    validate(settings)
    return settings
