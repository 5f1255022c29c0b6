"""Every plot returns a labelled Figure and shows nothing by itself."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils import images, plots

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


def test_learning_curves_mark_where_fine_tuning_starts():
    history = {"loss": [2, 1.5, 1], "accuracy": [0.2, 0.4, 0.5]}
    fig = plots.learning_curves(history, fine_tune_from=1)
    for ax in fig.axes:
        assert "fine-tuning starts" in [line.get_label() for line in ax.get_lines()]
    plain = plots.learning_curves(history)
    assert all(len(ax.get_lines()) == 1 for ax in plain.axes)


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
    mistakes = plots.mistakes(X, y, proba, NAMES, count=2)  # of 0, 3 and 5, all at 100%
    assert titles(mistakes)[:2] == [
        "true: Cezanne\npredicted: Degas (100%)",
        "true: Degas\npredicted: Monet (100%)",
    ]


def test_failure_analysis_figures():
    fig = plots.f1_per_artist({"Cezanne": 0.8, "Degas": 0.2, "Monet": 0.5})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["Degas", "Monet", "Cezanne"]
    calibration = {
        "edges": [0, 0.5, 1],
        "mean_confidence": [0.4, 0.8],
        "accuracy": [0.3, 0.7],
        "counts": [2, 3],
        "expected_calibration_error": 0.1,
    }
    reliability = plots.reliability_diagram(calibration)
    assert "ECE = 0.100" in reliability.axes[0].get_title()
    assert reliability.axes[0].get_xlabel() == "Confidence of the answer"
    sharpened = calibration | {"expected_calibration_error": 0.04}
    both = plots.reliability_diagram(sharpened, before=calibration, temperature=0.6)
    assert [ax.get_title() for ax in both.axes] == [
        "Before: temperature 1, ECE = 0.100",
        "After: temperature 0.6, ECE = 0.040",
    ]


def test_grad_cam_and_attribution_figures():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    fig = plots.grad_cam(image, {"Monet": np.zeros((8, 8)), "why not Degas?": np.ones((8, 8))})
    assert titles(fig)[:3] == ["painting", "Monet", "why not Degas?"]
    bars = plots.attribution(image, np.array([0.2, 0.5, 0.3]), NAMES, "new painting")
    assert [t.get_text() for t in bars.axes[1].get_yticklabels()] == ["Cezanne", "Monet", "Degas"]


def test_sweep_summary_skips_failed_runs():
    rows = [
        {"image_size": 32, "model": "cnn", "status": "ok", "accuracy": 0.5, "training_seconds": 3},
        {"image_size": 64, "model": "cnn", "status": "failed"},
        {
            "image_size": 64,
            "model": "shallow",
            "status": "ok",
            "accuracy": 0.3,
            "training_seconds": 1,
        },
    ]
    fig = plots.sweep_summary(rows, "image_size", "model")
    accuracy_ax = fig.axes[0]
    assert [len(line.get_xdata()) for line in accuracy_ax.get_lines()] == [1, 1]
    assert [t.get_text() for t in accuracy_ax.get_xticklabels()] == ["32", "64"]


def test_class_balance_leaves_room_for_its_legend_above_the_bars():
    fig = plots.class_balance(
        NAMES, {"training": np.array([0, 0, 0, 1]), "validation": np.array([2])}
    )
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert all(not legend.overlaps(bar.get_window_extent()) for bar in ax.patches)


def test_reliability_counts_each_band_and_names_both_sides_of_the_diagonal():
    calibration = {
        "edges": [0, 0.5, 1],
        "mean_confidence": [0.4, 0.8],
        "accuracy": [0.3, 0.7],
        "counts": [2, 3],
        "expected_calibration_error": 0.1,
    }
    texts = [t.get_text() for t in plots.reliability_diagram(calibration).axes[0].texts]
    assert {"2", "3"} <= set(texts)
    assert any("over-confident" in t for t in texts) and any("under-confident" in t for t in texts)


def test_grad_cam_has_a_colour_bar_and_marks_right_and_wrong():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    wrong = plots.grad_cam(image, {"Monet": np.ones((8, 8))}, "true: Degas", correct=False)
    assert len(wrong.axes) == 3  # painting, map, colour bar
    assert "each map's own max" in wrong.axes[-1].get_ylabel()
    assert wrong._suptitle.get_text() == "true: Degas (wrong)"
    right = plots.grad_cam(image, {"Monet": np.ones((8, 8))}, "true: Monet", correct=True)
    assert right._suptitle.get_text() == "true: Monet (right)"


def test_sweep_axes_and_data_caption_read_as_words():
    rows = [
        {"image_size": 32, "model": "cnn", "status": "ok", "accuracy": 0.5, "training_seconds": 3}
    ]
    fig = plots.sweep_summary(rows, "image_size", "model")
    assert fig.axes[0].get_xlabel() == "Image size (px)"
    assert plots.parameter_label("holdout_fold") == "Holdout fold"
    captioned = plots.label_data(fig, "synthetic sample")
    assert captioned._supxlabel.get_text() == "Data: synthetic sample"


def test_f1_bars_show_their_values_inside_the_axes():
    fig = plots.f1_per_artist({"Cezanne": 1.0, "Degas": 0.25})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["0.25", "1.00"]
    fig.canvas.draw()
    axes_box = ax.get_window_extent()
    for label in ax.texts:
        assert label.get_window_extent().x1 <= axes_box.x1, label.get_text()


def test_a_band_with_no_answer_right_is_drawn_at_zero():
    calibration = {
        "edges": [0, 0.5, 1],
        "mean_confidence": [0.4, 0.8],
        "accuracy": [0.0, 0.7],
        "counts": [4, 3],
        "expected_calibration_error": 0.3,
    }
    ax = plots.reliability_diagram(calibration).axes[0]
    [zero_band] = [c for c in ax.collections if c.get_label() == "band with no answer right"]
    [segment] = zero_band.get_segments()
    assert segment[:, 0].tolist() == [0.0, 0.5]
    assert "band with no answer right" in [t.get_text() for t in ax.get_legend().get_texts()]
    everything_right = calibration | {"accuracy": [0.5, 0.7]}
    labels = [
        c.get_label() for c in plots.reliability_diagram(everything_right).axes[0].collections
    ]
    assert "band with no answer right" not in labels


def test_an_original_is_drawn_at_most_a_megapixel_with_its_proportions():
    wide = np.zeros((2000, 3000, 3), dtype=np.uint8)
    shrunk = plots.drawable(wide)
    assert shrunk.shape[0] * shrunk.shape[1] <= plots.MAX_DRAWN_PIXELS
    assert shrunk.shape[1] / shrunk.shape[0] == pytest.approx(1.5, rel=0.01)
    small = np.zeros((100, 200, 3), dtype=np.uint8)
    assert plots.drawable(small) is small


def test_the_resizing_figure_of_a_7000_px_bmp_costs_no_more_than_the_decoding_cap(tmp_path):
    """#31: a 1,080-byte RLE BMP of 7000x7000 px in a training folder passed the caps, then
    Matplotlib drew all 49 megapixels (2,805 MiB). Drawn at most a megapixel, it costs what
    its decoding costs, which the cap bounds, and nothing on top."""
    from conftest import noise_image, write_jpeg
    from test_images import peak_memory_mib_of_loading, rle_bmp_bomb

    figure = (
        "from utils import plots\n"
        "_, example = images.first_readable([sys.argv[1]])\n"
        "plots.resize_steps(example, (28, 64, 128, 224)).savefig(sys.argv[1] + '.png', dpi=110)"
    )
    normal = write_jpeg(tmp_path / "normal.jpg", noise_image(5, 900, 1200))
    bomb = tmp_path / "bomb.bmp"
    bomb.write_bytes(rle_bmp_bomb(7000))
    assert bomb.stat().st_size < 5_000
    normal_peak = peak_memory_mib_of_loading(normal, figure)
    cap_mib = images.MAX_DECODED_BYTES / 2**20
    assert peak_memory_mib_of_loading(bomb, figure) < normal_peak + cap_mib
