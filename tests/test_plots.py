"""Every plot returns a labelled Figure and shows nothing by itself."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils import plots

NAMES = ["Cezanne", "Degas", "Monet"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def titles(fig):
    return [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""]


def test_class_balance_has_a_bar_per_artist_and_split():
    fig = plots.class_balance(
        NAMES, {"training": np.array([0, 0, 1, 2]), "validation": np.array([0, 1, 2])}
    )
    ax = fig.axes[0]
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert ax.get_ylabel() == "Number of images"


def test_learning_curves_plot_both_metrics_for_both_splits():
    history = {
        "loss": [2, 1],
        "accuracy": [0.2, 0.5],
        "val_loss": [2.1, 1.4],
        "val_accuracy": [0.2, 0.4],
    }
    fig = plots.learning_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["Loss per epoch", "Accuracy per epoch"]
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)
    assert all(ax.get_xlabel() == "Epoch" for ax in fig.axes)


def test_confusion_matrix_labels_rows_and_columns_with_artists():
    fig = plots.confusion_matrix(np.array([[2, 0, 0], [1, 1, 0], [0, 0, 3]]), NAMES)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert ax.get_xlabel() == "Predicted artist" and ax.get_ylabel() == "True artist"
    assert [t.get_text() for t in ax.texts] == ["2", "0", "0", "1", "1", "0", "0", "0", "3"]


def test_image_figures_have_titles():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.eye(3)[[1, 0, 1, 2, 2, 0]]
    grid = plots.image_grid(X, y, NAMES, per_class=2)
    assert "per artist" in titles(grid)[-1]
    assert titles(grid)[:3] == NAMES
    assert "sizes" in titles(plots.image_sizes(np.array([[10, 20], [30, 40]])))[0]
    resized = plots.resize_steps(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), (8, 16))
    assert titles(resized)[:3] == ["original 60x40", "8x8", "16x16"]
    mistakes = plots.mistakes(X, y, proba, np.array([0, 5]), NAMES)
    assert titles(mistakes)[0] == "true: Cezanne\npredicted: Degas (100%)"
