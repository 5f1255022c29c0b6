"""Shared fixtures: image-file makers, tiny datasets, and the real paintings when present."""

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from utils import paths

SHARED_DATA = paths.PROJECT_ROOT.parent / "shared" / "data"
SUBSET_DIR = SHARED_DATA / "impressionist-subset"
FULLSIZE_DIR = SHARED_DATA / "impressionist-fullsize"


# The out/ folder this pytest process made for the runs of its tests, to remove at the end.
MADE_OUT = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Send every run's results (the notebook's included) to a temporary out/ folder, one
    per pytest-xdist worker, so that two workers never share a run folder.

    The folder is made here only if ``CNN_ARTISTS_OUT`` is unset, and then removed at the
    end (``pytest_unconfigure``); a folder you name yourself is kept, to read afterwards.
    """
    if "CNN_ARTISTS_OUT" not in os.environ:
        made = Path(tempfile.mkdtemp(prefix="cnn-artists-test-out-"))
        config.stash[MADE_OUT] = made
        os.environ["CNN_ARTISTS_OUT"] = str(made)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    out = Path(os.environ["CNN_ARTISTS_OUT"])
    if worker and out.name != f"worker-{worker}":
        (out / f"worker-{worker}").mkdir(parents=True, exist_ok=True)
        os.environ["CNN_ARTISTS_OUT"] = str(out / f"worker-{worker}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the out/ folder ``pytest_configure`` made (each run left 60-160 MB in /tmp)."""
    made = config.stash.get(MADE_OUT, None)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 90) -> Path:
    """Write an RGB array as a JPEG (OpenCV wants BGR)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    path.write_bytes(data.tobytes())
    return path


def solid(colour: tuple[int, int, int], height: int = 40, width: int = 60) -> np.ndarray:
    """An RGB image of one colour."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = colour
    return image


def noise_image(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A random RGB image (distinct per seed)."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_dataset(root: Path, layout: str, classes: dict[str, tuple[int, int]]) -> Path:
    """Write a tiny dataset: ``classes`` maps a class name to (training, validation) counts.

    ``layout`` is ``kaggle``, ``flat`` or ``single`` (validation counts are then added
    to the one folder).
    """
    seed = 0
    for name, (train_count, val_count) in classes.items():
        if layout == "single":
            folders = [(root / name, train_count + val_count)]
        elif layout == "kaggle":
            folders = [
                (root / "training" / "training" / name, train_count),
                (root / "validation" / "validation" / name, val_count),
            ]
        else:
            folders = [
                (root / "training" / name, train_count),
                (root / "validation" / name, val_count),
            ]
        for folder, count in folders:
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                seed += 1
                write_jpeg(folder / f"{index:03d}.jpg", noise_image(seed))
    return root


def write_notebook(path: Path, parameters: str, body: str) -> Path:
    """A small notebook for the project's kernel: a tagged parameters cell, then ``body``,
    which can ``from utils import ...`` wherever the notebook lies (the project is installed)."""
    parameters_cell = new_code_cell(parameters)
    parameters_cell.metadata["tags"] = ["parameters"]
    notebook = new_notebook(cells=[parameters_cell, new_code_cell(body)])
    notebook.metadata["kernelspec"] = {
        "name": "cnn-artists",
        "display_name": "Python 3 (cnn-artists)",
        "language": "python",
    }
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def kaggle_dataset(tmp_path: Path) -> Path:
    """A tiny dataset in the Kaggle nested layout: three classes, 4 training and 2 validation."""
    return make_dataset(
        tmp_path / "kaggle", "kaggle", {c: (4, 2) for c in ("Monet", "Degas", "Renoir")}
    )


@pytest.fixture
def subset_dir() -> Path:
    """The real paintings in ../shared, or a skip that says why."""
    if not (SUBSET_DIR / "manifest.csv").is_file():
        pytest.skip(
            f"real paintings not found at {SUBSET_DIR} (only present beside the project's checkout)"
        )
    return SUBSET_DIR


# The files that take minutes, longest first (docs/development.md has their durations). They
# start first, so that with two workers (make test) the short files fill in around them
# rather than one long file starting last while the other worker idles.
LONGEST_FIRST = (
    "test_recipes.py",
    "test_notebook.py",
    "test_resume.py",
    "test_distribute.py",
    "test_smoke_matrix_more.py",
    "test_smoke_matrix.py",
    "solutions.ipynb",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the long files first (``LONGEST_FIRST``), the rest in their usual order.

    The worked solutions train about twenty small networks, minutes in all: mark their
    nbval cells slow, so that make test-all runs them and make test stays short."""
    for item in items:
        if item.path.name == "solutions.ipynb":
            item.add_marker(pytest.mark.slow)
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))
