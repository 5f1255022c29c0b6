"""Attribute new paintings with a trained model: top-k artists, their probabilities, and the
closest training paintings (when the run kept their features).

    python -m utils.predict path/a.jpg path/b.png [--model out/<run>/model.keras] [--top-k 3]

(``make predict IMAGES="..." [MODEL=...]`` runs the same.) Without ``--model`` the model of the
newest finished run under ``out/`` is used. Every model is saved with ``model_info.json`` beside
it: the class list and the image settings it was trained with, so a painting is prepared
exactly as the training images were. Loading keeps Keras's safe mode on: a model file
cannot run arbitrary code.
"""

import argparse
import difflib
import json
import os
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from utils import calibration, evaluation, images, paths, runs, sample_data, similar
from utils.backend import keras
from utils.choices import (
    MAX_IMAGE_SIZE,
    MAX_TEMPERATURE,
    MIN_IMAGE_SIZE,
    MIN_TEMPERATURE,
    RESIZE_MODES,
)

MODEL_INFO = "model_info.json"
HONEST_NOTE = (
    "These are probabilities among the painters the model was trained on, not proof of "
    "authorship: a painting by anyone else still gets probabilities that sum to 100%."
)


@dataclass(frozen=True)
class TrainedModel:
    """A loaded model with the class list and image settings it was trained with."""

    model: keras.Model
    class_names: list[str]
    image_size: int
    resize_mode: str
    path: Path
    data_dir: str
    temperature: float = 1.0  # divides the log-probabilities (utils/calibration.py)
    temperature_recorded: bool = True  # False: a model saved before temperatures existed

    @property
    def input_size(self) -> int:
        """Side of the images the network itself takes (smaller than ``image_size`` when it
        was trained on crops)."""
        return int(self.model.input_shape[1])

    @property
    def probabilities_note(self) -> str:
        """How the probabilities are scaled, in words: by the temperature saved with the
        model, or not at all for a model saved before temperatures were recorded."""
        if not self.temperature_recorded:
            return "temperature 1 (this model was saved without one: uncalibrated)"
        if self.temperature == 1:
            return "temperature 1 (as the network gives them)"
        return f"temperature {self.temperature:.3g}, fitted on paintings it never scored"

    @property
    def trained_on(self) -> str:
        """Where the training paintings came from, in words."""
        if not self.data_dir:
            return "the built-in SYNTHETIC sample: its answers say nothing about real paintings"
        return self.data_dir


@dataclass(frozen=True)
class Attribution:
    """The answer for one painting: class probabilities, or why it could not be read."""

    path: Path
    probabilities: np.ndarray | None
    error: str | None = None

    def top(self, class_names: list[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable artists, most probable first."""
        if self.probabilities is None:
            return []
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(class_names[i], float(self.probabilities[i])) for i in order]


def write_model_info(
    run_dir: Path,
    class_names: list[str],
    image_size: int,
    resize_mode: str,
    model_name: str,
    data_dir: str,
    temperature: float = 1.0,
) -> Path:
    """Record beside ``model.keras`` what a later prediction needs to prepare its images and
    to scale its probabilities (``temperature``), and what it was trained on (``data_dir``;
    empty for the synthetic sample)."""
    info = {
        "class_names": class_names,
        "image_size": image_size,
        "resize_mode": resize_mode,
        "temperature": temperature,
        "model": model_name,
        "data_dir": data_dir,
    }
    return runs.write_json(Path(run_dir) / MODEL_INFO, info)


class ModelFileError(ValueError):
    """A model file or its ``model_info.json`` cannot be used; the message says why."""


def _read_model_info(info_path: Path) -> dict:
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelFileError(f"{info_path} is not readable JSON ({error}).") from None
    except RecursionError:
        raise ModelFileError(f"{info_path} is nested too deeply to be model information.") from None
    needed = {"class_names": list, "image_size": int, "resize_mode": str}
    wrong = [
        k
        for k, kind in needed.items()
        if not isinstance(info.get(k) if isinstance(info, dict) else None, kind)
    ]
    if wrong:
        raise ModelFileError(f"{info_path} lacks a valid {', '.join(wrong)}.")
    problems = []
    names = info["class_names"]
    if not names or not all(isinstance(name, str) and name for name in names):
        problems.append("class_names must be a list of artists' names")
    elif len(set(names)) != len(names):
        problems.append("class_names must not repeat an artist")
    if not MIN_IMAGE_SIZE <= info["image_size"] <= MAX_IMAGE_SIZE:
        problems.append(f"image_size must lie between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE}")
    if info["resize_mode"] not in RESIZE_MODES:
        problems.append(f"resize_mode must be one of {', '.join(RESIZE_MODES)}")
    temperature = info.get("temperature", 1.0)
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE
    ):
        problems.append(f"temperature must lie between {MIN_TEMPERATURE} and {MAX_TEMPERATURE}")
    if problems:
        raise ModelFileError(f"{info_path}: {'; '.join(problems)}.")
    return info


# What a model.keras may unpack to, checked before Keras reads it: its JSON files are a few
# hundred KB at most, the weights of this project's networks tens of MB. Keras stores its
# members uncompressed; a member that inflates far beyond its stored size is refused.
MAX_JSON_BYTES, MAX_MODEL_BYTES, MAX_INFLATION = 10_000_000, 2_000_000_000, 100


def _check_model_archive(model_path: Path) -> None:
    """Refuse a ``.keras`` archive whose members would unpack to more than a model needs."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(f"{model_path} is not a usable Keras model ({error}).") from None
    problems = []
    for member in members:
        name, size = member.filename, member.file_size
        if name.startswith("/") or ".." in Path(name).parts:
            problems.append(f"a member named {name!r} points outside the archive")
        elif name.endswith(".json") and size > MAX_JSON_BYTES:
            problems.append(f"{name} would take {size / 1e6:,.0f} MB")
        elif size > MAX_INFLATION * member.compress_size + 1_000_000:
            problems.append(f"{name} inflates {size / max(member.compress_size, 1):,.0f} times")
    total = sum(member.file_size for member in members)
    if total > MAX_MODEL_BYTES:
        problems.append(f"its members would take {total / 1e9:,.1f} GB")
    if problems:
        raise ModelFileError(
            f"{model_path} is not a model this project saved: {'; '.join(problems[:3])}."
        )


def load_trained_model(model_path: Path) -> TrainedModel:
    """Load ``model.keras`` (safe mode on) and the ``model_info.json`` beside it.

    Raises ``FileNotFoundError`` when either file is missing and ``ModelFileError`` when
    either cannot be used (a damaged model, a malformed info file, or a class list that
    does not match the model's outputs).
    """
    model_path = Path(model_path)
    info_path = model_path.with_name(MODEL_INFO)
    if not model_path.is_file():
        raise FileNotFoundError(f"No model at {model_path}. Train one first with `make run`.")
    if not info_path.is_file():
        raise FileNotFoundError(
            f"{info_path} is missing: it holds the class list and image size the model was "
            "trained with. Models saved by the notebook always have it."
        )
    info = _read_model_info(info_path)
    if not zipfile.is_zipfile(model_path):  # Keras would call it "File not found"
        raise ModelFileError(
            f"{model_path} is not a usable Keras model: a .keras file is a zip archive, and "
            "this one is not (damaged, cut short, or another format)."
        )
    _check_model_archive(model_path)
    try:
        # Only to predict: its optimizer (whose state may be partial) is not needed.
        model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many kinds for a damaged file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelFileError(
            f"{model_path} is not a usable Keras model ({type(error).__name__}: {first_line})"
        ) from None
    outputs = int(model.output_shape[-1])
    if len(info["class_names"]) != outputs:
        raise ModelFileError(
            f"{info_path} lists {len(info['class_names'])} artists, but the model has "
            f"{outputs} outputs: they do not belong together."
        )
    return TrainedModel(
        model,
        info["class_names"],
        int(info["image_size"]),
        info["resize_mode"],
        model_path,
        info.get("data_dir", ""),
        float(info.get("temperature", 1.0)),
        "temperature" in info,
    )


def class_index(class_names: list[str], artist: str) -> int:
    """Position of ``artist`` in the class list, with a clear error if it is not there."""
    if artist not in class_names:
        folded = {name.casefold(): name for name in class_names}
        close = difflib.get_close_matches(artist.casefold(), list(folded), n=1, cutoff=0.6)
        hint = f"; did you mean {folded[close[0]]!r}?" if close else ""
        raise ValueError(
            f"{artist!r} is not one of the {len(class_names)} artists: "
            f"{', '.join(class_names)}{hint}"
        )
    return class_names.index(artist)


def check_request(painting: str, suspected_artist: str, class_names: list[str]) -> None:
    """Refuse, before any training, a ``painting`` that is not an image the loader can read
    (a missing file, a folder, a FIFO or device, a damaged image) and a ``suspected_artist``
    that is not in the class list (naming the closest artist)."""
    class_index(class_names, suspected_artist)
    if not painting:
        return
    path = paths.resolve(painting)
    if path.is_dir():
        raise ValueError(f"painting {paths.display(path)} is a folder, not an image file")
    if not path.exists():
        raise ValueError(f"painting {paths.display(path)} does not exist")
    try:
        images.decode_rgb(images.read_file(path))
    except (images.UnreadableImageError, OSError, cv2.error) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(f"painting {paths.display(path)} cannot be read: {reason}") from None


def example_painting(
    painting_paths: Sequence[Path], labels: np.ndarray, class_names: list[str], artist: str
) -> Path:
    """The first painting labelled ``artist``, or the first painting if there is none."""
    matches = np.flatnonzero(labels == class_index(class_names, artist))
    return Path(painting_paths[int(matches[0]) if len(matches) else 0])


def painting_to_attribute(
    painting: str,
    suspected_artist: str,
    sample_dir: Path | None,
    evaluation_paths: Sequence[Path],
    evaluation_labels: np.ndarray,
    class_names: list[str],
) -> Path:
    """The painting the chapter's section 13 attributes: ``painting``, the user's own file,
    when set; else, on the synthetic sample (``sample_dir``), its painting in
    ``suspected_artist``'s style that is in neither split; else, on real paintings, that
    artist's first evaluation painting standing in (``example_painting``)."""
    if painting:
        return paths.resolve(painting)
    if sample_dir is not None:
        return sample_data.unseen_painting(sample_dir, suspected_artist)
    return example_painting(evaluation_paths, evaluation_labels, class_names, suspected_artist)


def newest_model(out_root: Path | None = None) -> Path:
    """The most recently written ``model.keras`` of a finished run under ``out/``.

    Runs whose ``status.json`` says anything but finished (failed, still running,
    diverged, or from before status files) are passed over; name one with ``--model``.
    """
    out_root = Path(out_root or paths.out_root())
    models = sorted(out_root.glob("*/model.keras"), key=lambda p: p.stat().st_mtime)
    finished = [p for p in models if runs.read_status(p.parent)["status"] == runs.FINISHED]
    if not finished:
        passed_over = (
            f" ({len(models)} model(s) there belong to runs that did not finish)" if models else ""
        )
        raise FileNotFoundError(
            f"No finished run with a model under {paths.display(out_root)}/{passed_over}. "
            "Run `make run` first, or pass one with MODEL=out/<run>/model.keras."
        )
    return finished[-1]


def attribute(trained: TrainedModel, painting_paths: Sequence[Path]) -> list[Attribution]:
    """Probabilities for each painting; unreadable files get an error and no probabilities."""
    painting_paths = [Path(p) for p in painting_paths]
    loaded = images.load_images(painting_paths, trained.image_size, trained.resize_mode)
    proba = (
        evaluation.predict_proba(trained.model, loaded.X)
        if len(loaded.X)
        else np.empty((0, len(trained.class_names)))
    )
    proba = calibration.apply_temperature(proba, trained.temperature)
    by_index = dict(zip(loaded.kept.tolist(), proba, strict=True))
    reasons = {item.path: item.reason for item in loaded.skipped}
    return [
        Attribution(path, by_index.get(index), reasons.get(path))
        for index, path in enumerate(painting_paths)
    ]


def format_table(attributions: Sequence[Attribution], class_names: list[str], k: int = 3) -> str:
    """A plain-text table: per painting, its top-k artists with probabilities."""
    names = [paths.display(a.path) for a in attributions]
    width = max(len("Painting"), *(len(n) for n in names))
    artist_width = max(len("Artist"), *(len(c) for c in class_names))
    rows = [f"{'Painting':<{width}}  Rank  {'Artist':<{artist_width}}  Probability"]
    rows.append("-" * len(rows[0]))
    for name, attribution in zip(names, attributions, strict=True):
        if attribution.probabilities is None:
            rows.append(f"{name:<{width}}  -     could not be read: {attribution.error}")
            continue
        for rank, (artist, probability) in enumerate(attribution.top(class_names, k), start=1):
            label = name if rank == 1 else ""
            rows.append(
                f"{label:<{width}}  {rank:<4}  {artist:<{artist_width}}  {probability:>10.1%}"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the top-k table for each painting; exit 1 if none could be read."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="paintings to attribute")
    parser.add_argument(
        "--model", type=Path, help="a model.keras (default: the newest finished run's)"
    )
    parser.add_argument("--top-k", type=int, default=3, help="artists to list per painting")
    args = parser.parse_args(argv)
    try:
        model_path = _absolute(args.model) if args.model else newest_model()
        trained = load_trained_model(model_path)
    except (FileNotFoundError, ModelFileError) as error:
        print(error, file=sys.stderr)
        return 2
    attributions = attribute(trained, [_absolute(p) for p in args.images])
    print(
        f"Model: {paths.display(trained.path)} ({len(trained.class_names)} artists, "
        f"{trained.image_size} px, {trained.resize_mode})\nTrained on {trained.trained_on}\n"
        f"Probabilities: {trained.probabilities_note}\n"
    )
    print(format_table(attributions, trained.class_names, args.top_k))
    print(f"\n{HONEST_NOTE}")
    gallery_path = trained.path.parent / similar.GALLERY_FILE
    readable = [a.path for a in attributions if a.probabilities is not None]
    if gallery_path.is_file() and readable:
        try:
            gallery = similar.load(gallery_path)
        except similar.GalleryError as error:
            print(f"\nThe closest training paintings cannot be shown: {error}.")
            return 0
        loaded = images.load_images(readable, trained.image_size, trained.resize_mode)
        for path, embedding in zip(readable, similar.embed(loaded.X), strict=True):
            print(f"\n{paths.display(path)}\n{similar.describe(gallery, embedding)}")
    return 0 if any(a.probabilities is not None for a in attributions) else 1


def _absolute(path: Path) -> Path:
    """``path`` made absolute, its links resolved where they lead somewhere; a link loop is
    kept as written, so that reading it fails for that file alone, with the loop named."""
    path = path.expanduser()
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
        return Path(os.path.abspath(path))


if __name__ == "__main__":
    sys.exit(main())
