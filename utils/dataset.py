"""Find a dataset's layout, its sorted class list and the image files of each split.

Knows nothing of pixels or models: it works on folder and file names only.
"""

import errno
import os
import stat
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
# Folds for tuning are drawn with this fixed seed, so fold k holds the same paintings in
# every run, whatever the training seed: candidates are compared on the same images.
FOLD_SEED = 0
KAGGLE_URL = "https://www.kaggle.com/datasets/delayedkarma/impressionist-classifier-data"

HOW_TO_GET_DATA = f"""\
To use the real paintings, download the Kaggle dataset "impressionist-classifier-data":
  - with the Kaggle CLI (needs an API token in ~/.kaggle/kaggle.json):
      kaggle datasets download -d delayedkarma/impressionist-classifier-data -p data/
      unzip data/impressionist-classifier-data.zip -d data/impressionist
  - or by hand from {KAGGLE_URL}, unzipped into data/impressionist
Then pass data_dir="data/impressionist" (for example: make run PARAMS="-f params/kaggle.yaml").
Leave data_dir="" to run on the built-in synthetic sample instead."""


class DataNotFoundError(FileNotFoundError):
    """The data folder does not exist; the message says how to get the data."""


class DatasetError(ValueError):
    """The data folder exists but cannot be used as it is (empty, mismatched classes...)."""


@dataclass(frozen=True)
class Layout:
    """Where the splits of a dataset live.

    ``kind`` is ``"kaggle"`` (``training/training/<Artist>``), ``"flat"``
    (``training/<Artist>``) or ``"single"`` (``<Artist>/`` only, split on the fly).
    """

    kind: str
    train_dir: Path
    val_dir: Path | None


@dataclass(frozen=True)
class SplitFiles:
    """The image files of one split and their integer labels."""

    paths: list[Path]
    labels: np.ndarray


@dataclass(frozen=True)
class DatasetFiles:
    """Everything a loader needs: the layout, the class list and both splits."""

    layout: Layout
    class_names: list[str]
    train: SplitFiles
    val: SplitFiles


def escaped(path: Path) -> str:
    """A path that can be printed whatever its bytes: undecodable ones shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _visible_subdirs(folder: Path) -> list[Path]:
    """The class folders of ``folder``; hidden and non-UTF-8 ones are left out, with a warning."""
    kept = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir()):
        if path.name.startswith("."):
            warnings.warn(
                f"Ignoring the hidden folder {escaped(path)} (its name starts with '.').",
                stacklevel=3,
            )
        elif not _is_utf8(path.name):
            warnings.warn(
                f"Skipping the folder {escaped(path)}: its name is not valid UTF-8. "
                "Rename it to use it as an artist.",
                stacklevel=3,
            )
        else:
            kept.append(path)
    return kept


def _class_name(folder: Path) -> str:
    # macOS writes "Cézanne" decomposed (NFD); compare names in one normal form.
    return unicodedata.normalize("NFC", folder.name)


def _looks_like_image(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def _what_it_is(path: Path) -> str:
    """What an entry is when it is not a regular file (through its link, if it is one):
    "a FIFO", "a link to a character device", "a link that leads to no file", "a link in a
    loop"...; "" for a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a link in a loop"
        return "a link that leads to no file" if path.is_symlink() else "unreadable"
    if stat.S_ISREG(mode):
        return ""
    kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
    return f"a link to {kind}" if path.is_symlink() else kind


def is_image_file(path: Path) -> bool:
    """True for visible files whose extension (any case) is an image format."""
    return path.is_file() and _looks_like_image(path)


def find_layout(data_dir: Path) -> Layout:
    """Recognise the Kaggle nested layout, the flat one, or a single folder of classes."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataNotFoundError(f"Data folder not found: {data_dir}\n\n{HOW_TO_GET_DATA}")
    for kind, train_dir, val_dir in (
        ("kaggle", data_dir / "training" / "training", data_dir / "validation" / "validation"),
        ("flat", data_dir / "training", data_dir / "validation"),
    ):
        if train_dir.is_dir() and val_dir.is_dir():
            return Layout(kind, train_dir, val_dir)
    if (data_dir / "training").is_dir():
        raise DatasetError(f"{data_dir} has a training folder but no validation folder beside it.")
    if not _visible_subdirs(data_dir):
        raise DatasetError(
            f"{data_dir} holds no class folders. Expected training/ and validation/ "
            f"or one sub-folder per artist.\n\n{HOW_TO_GET_DATA}"
        )
    return Layout("single", data_dir, None)


def find_class_names(split_dir: Path) -> list[str]:
    """The sorted names of the class folders in ``split_dir`` (hidden folders ignored)."""
    return sorted(_class_name(p) for p in _visible_subdirs(split_dir))


def list_split(split_dir: Path, class_names: list[str]) -> SplitFiles:
    """List the images of a split, labelled by their position in ``class_names``.

    Raises ``DatasetError`` when the split has a class the list lacks or a class folder
    with no images; warns when a class of the list is missing from this split.
    """
    folders = {_class_name(p): p for p in _visible_subdirs(split_dir)}
    unknown = sorted(set(folders) - set(class_names))
    if unknown:
        raise DatasetError(
            f"{split_dir} has classes that the training split lacks: {', '.join(unknown)}. "
            "Every artist must have a training folder."
        )
    missing = [name for name in class_names if name not in folders]
    if missing:
        warnings.warn(
            f"{split_dir} has no folder for: {', '.join(missing)}. "
            "Those artists are not evaluated on this split.",
            stacklevel=2,
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        if name not in folders:
            continue
        entries = sorted(folders[name].iterdir())
        not_files = [(p, _what_it_is(p)) for p in entries if _looks_like_image(p)]
        not_files = [(p, kind) for p, kind in not_files if kind]
        if not_files:
            warnings.warn(
                f"Skipping {len(not_files)} entr{'y' if len(not_files) == 1 else 'ies'} named "
                "like images that are not image files: "
                + ", ".join(f"{escaped(p)} ({kind})" for p, kind in not_files),
                stacklevel=2,
            )
        files = [p for p in entries if is_image_file(p)]
        undecodable = [p for p in files if not _is_utf8(p.name)]
        if undecodable:
            warnings.warn(
                f"Skipping {len(undecodable)} file(s) whose names are not valid UTF-8: "
                + ", ".join(escaped(p) for p in undecodable),
                stacklevel=2,
            )
            files = [p for p in files if p not in undecodable]
        if not files:
            raise DatasetError(f"Class folder {folders[name]} contains no images.")
        paths += files
        labels += [label] * len(files)
    return SplitFiles(paths, np.asarray(labels, dtype=np.int64))


def _subset(files: SplitFiles, idx: np.ndarray) -> SplitFiles:
    idx = np.sort(idx)
    return SplitFiles([files.paths[i] for i in idx], files.labels[idx])


def stratified_split(
    files: SplitFiles, validation_split: float, seed: int
) -> tuple[SplitFiles, SplitFiles]:
    """Split one set of files into training and validation, keeping class proportions."""
    if not 0 < validation_split < 1:
        raise DatasetError(f"validation_split must lie between 0 and 1, got {validation_split}.")
    indices = np.arange(len(files.paths))
    train_idx, val_idx = train_test_split(
        indices, test_size=validation_split, random_state=seed, stratify=files.labels
    )
    return _subset(files, train_idx), _subset(files, val_idx)


def holdout_split(files: SplitFiles, fold: int, folds: int) -> tuple[SplitFiles, SplitFiles]:
    """Fold ``fold`` (1 to ``folds``) of a stratified k-fold partition, and the rest.

    For tuning: train on the rest, measure on the fold, and leave the real validation
    split unread. The partition depends only on the files and ``FOLD_SEED``.
    """
    if folds < 2 or not 1 <= fold <= folds:
        raise DatasetError(
            f"holdout_fold must lie between 1 and holdout_folds ({folds}), got {fold}; "
            "holdout_folds must be at least 2."
        )
    smallest = int(np.bincount(files.labels).min()) if len(files.labels) else 0
    if smallest < folds:
        raise DatasetError(
            f"An artist has only {smallest} training images, fewer than holdout_folds ({folds})."
        )
    partition = StratifiedKFold(n_splits=folds, shuffle=True, random_state=FOLD_SEED)
    train_idx, held_idx = list(partition.split(np.zeros(len(files.labels)), files.labels))[fold - 1]
    return _subset(files, train_idx), _subset(files, held_idx)


def collect_files(
    data_dir: Path,
    validation_split: float = 0.2,
    seed: int = 42,
    holdout_fold: int = 0,
    holdout_folds: int = 5,
) -> DatasetFiles:
    """Find the layout, fix the class list from the training split and list both splits.

    With ``holdout_fold`` k > 0 the "validation" split is fold k of ``holdout_folds`` of
    the training split (see ``holdout_split``), and the real validation split is not read.
    """
    layout = find_layout(data_dir)
    class_names = find_class_names(layout.train_dir)
    if not class_names:
        raise DatasetError(f"{layout.train_dir} holds no class folders.\n\n{HOW_TO_GET_DATA}")
    if len(class_names) < 2:
        raise DatasetError(
            f"{layout.train_dir} holds one artist folder ({class_names[0]}); telling painters "
            "apart needs at least two."
        )
    train = list_split(layout.train_dir, class_names)
    if holdout_fold:
        train, val = holdout_split(train, holdout_fold, holdout_folds)
    elif layout.val_dir is None:
        train, val = stratified_split(train, validation_split, seed)
    else:
        val = list_split(layout.val_dir, class_names)
    return DatasetFiles(layout, class_names, train, val)


def pick_per_class(files: SplitFiles, per_class: int, seed: int = 0) -> SplitFiles:
    """Up to ``per_class`` randomly chosen files of each class, in class order."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in np.unique(files.labels):
        members = np.flatnonzero(files.labels == label)
        chosen += sorted(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return SplitFiles([files.paths[i] for i in chosen], files.labels[chosen])


def counts_per_class(class_names: list[str], labels: np.ndarray) -> dict[str, int]:
    """How many of ``labels`` belong to each class, by name, in class order."""
    counts = Counter(labels.tolist())
    return {name: counts[label] for label, name in enumerate(class_names)}


def count_table(class_names: list[str], splits: dict[str, np.ndarray]) -> str:
    """A plain-text table of images per class (rows) and split (columns), with totals."""
    counts = {split: Counter(labels.tolist()) for split, labels in splits.items()}
    width = max(len("Artist"), *(len(name) for name in class_names), len("Total"))
    header = f"{'Artist':<{width}}" + "".join(f"{split:>12}" for split in splits)
    rows = [header, "-" * len(header)]
    for label, name in enumerate(class_names):
        rows.append(f"{name:<{width}}" + "".join(f"{counts[s][label]:>12}" for s in splits))
    rows.append("-" * len(header))
    rows.append(f"{'Total':<{width}}" + "".join(f"{len(labels):>12}" for labels in splits.values()))
    return "\n".join(rows)
