"""Figures for the notebook. Each function returns a Matplotlib Figure and shows nothing,
so the notebook can save it (``runs.save_figure``) before it displays it."""

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from utils import evaluation, images


def class_balance(class_names: list[str], labels_by_split: dict[str, np.ndarray]) -> Figure:
    """Grouped bars: images per artist in each split."""
    fig, ax = plt.subplots(figsize=(10, 4))
    positions = np.arange(len(class_names))
    width = 0.8 / len(labels_by_split)
    for offset, (split, labels) in enumerate(labels_by_split.items()):
        counts = np.bincount(labels, minlength=len(class_names))
        ax.bar(positions + offset * width, counts, width, label=split)
    ax.set_xticks(positions + width * (len(labels_by_split) - 1) / 2, class_names, rotation=30)
    ax.set(title="Images per artist", xlabel="Artist", ylabel="Number of images")
    highest = max(
        (np.bincount(labels).max() for labels in labels_by_split.values() if len(labels)), default=1
    )
    ax.set_ylim(0, 1.3 * highest)  # room above the bars for the legend
    ax.legend(loc="upper right", ncols=len(labels_by_split))
    fig.tight_layout()
    return fig


def image_grid(
    X: np.ndarray, y: np.ndarray, class_names: list[str], per_class: int = 3, seed: int = 0
) -> Figure:
    """A few images of each artist, one column per artist, in their true colours."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        per_class,
        len(class_names),
        figsize=(1.15 * len(class_names), 1.15 * per_class + 0.5),
        squeeze=False,
    )
    for label, name in enumerate(class_names):
        members = np.flatnonzero(y == label)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        axes[0, label].set_title(name, fontsize=9)
        for row in range(per_class):
            axes[row, label].axis("off")
            if row < len(chosen):
                axes[row, label].imshow(X[chosen[row]])
    fig.suptitle("A few training paintings per artist")
    fig.tight_layout()
    return fig


def image_sizes(original_sizes: np.ndarray) -> Figure:
    """Scatter of original widths against heights: why one uniform size is needed."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(original_sizes[:, 1], original_sizes[:, 0], s=8, alpha=0.5)
    ax.set(title="Original image sizes", xlabel="Width (px)", ylabel="Height (px)")
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return fig


# The most pixels of an original a figure draws: a figure a few inches wide shows no more, and
# Matplotlib would otherwise hold a 49-megapixel painting at full size several times over.
MAX_DRAWN_PIXELS = 1_000_000


def drawable(image: np.ndarray, max_pixels: int = MAX_DRAWN_PIXELS) -> np.ndarray:
    """``image`` shrunk (area averaging) to at most ``max_pixels``, its proportions kept."""
    height, width = image.shape[:2]
    if height * width <= max_pixels:
        return image
    scale = (max_pixels / (height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def resize_steps(image: np.ndarray, sizes: tuple[int, ...], mode: str = "squash") -> Figure:
    """One painting at its original size (drawn at most a megapixel) and at each of ``sizes``."""
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(2.2 * (len(sizes) + 1), 2.6))
    axes[0].imshow(drawable(image))
    axes[0].set_title(f"original {image.shape[1]}x{image.shape[0]}")
    for ax, size in zip(axes[1:], sizes, strict=True):
        ax.imshow(images.resize(image, size, mode), interpolation="nearest")
        ax.set_title(f"{size}x{size}" + (" (enlarged)" if size > min(image.shape[:2]) else ""))
    for ax in axes:
        ax.axis("off")
    fig.suptitle("The same painting resized: fine brushwork disappears first")
    fig.tight_layout()
    return fig


def learning_curves(history: dict[str, list[float]], fine_tune_from: int = 0) -> Figure:
    """Loss and accuracy per epoch, training against validation.

    ``fine_tune_from`` > 0 marks where fine-tuning began: after that many epochs of
    training the new head alone.
    """
    fig, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric, label in ((loss_ax, "loss", "Loss"), (accuracy_ax, "accuracy", "Accuracy")):
        ax.plot(epochs, history[metric], label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label="validation")
        if 0 < fine_tune_from < len(epochs):
            ax.axvline(
                fine_tune_from + 0.5, color="grey", linestyle="--", label="fine-tuning starts"
            )
        ax.set(title=f"{label} per epoch", xlabel="Epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    accuracy_ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: np.ndarray, class_names: list[str]) -> Figure:
    """Confusion matrix: rows are true artists, columns predicted, cells show counts."""
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    row_totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, row_totals, out=np.zeros(matrix.shape), where=row_totals > 0)
    shown = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(matrix):
        ax.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if shares[row, column] > 0.5 else "black",
            fontsize=8,
        )
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set(title="Confusion matrix (validation)", xlabel="Predicted artist", ylabel="True artist")
    fig.colorbar(shown, ax=ax, label="Share of the true artist's paintings")
    fig.tight_layout()
    return fig


def mistakes(
    X: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: list[str],
    count: int = 8,
    columns: int = 4,
) -> Figure:
    """The ``count`` most confident mistakes (``evaluation.most_confident_mistakes``), each
    image with its true artist, the prediction and its probability."""
    indices = evaluation.most_confident_mistakes(y_true, proba, count)
    rows = max(1, int(np.ceil(len(indices) / columns)))
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.6 * columns, 3.1 * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, indices, strict=False):
        predicted = int(proba[index].argmax())
        ax.imshow(X[index])
        ax.set_title(
            f"true: {class_names[y_true[index]]}\n"
            f"predicted: {class_names[predicted]} ({proba[index, predicted]:.0%})",
            fontsize=9,
        )
    fig.suptitle("The most confident mistakes on the validation split")
    return fig


def f1_per_artist(f1_by_artist: dict[str, float]) -> Figure:
    """Horizontal bars of F1 per artist, weakest at the bottom, each with its value."""
    names = sorted(f1_by_artist, key=f1_by_artist.get)
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    bars = ax.barh(names, [f1_by_artist[name] for name in names])
    ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
    # Room right of 1.0 for the labels; the ticks stop at 1, the largest F1 there is.
    ax.set(title="F1 per artist (validation)", xlabel="F1 score", ylabel="Artist", xlim=(0, 1.12))
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


DIAGONAL_NOTE_BOX = {"facecolor": "white", "edgecolor": "grey", "alpha": 0.9}


def reliability_diagram(
    calibration: dict, before: dict | None = None, temperature: float = 1.0
) -> Figure:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration; with
    ``before`` (the reliability before ``temperature`` was applied), the two side by side.

    Each bar is one band of confidence; its height is the share of those answers that were
    right, and the number above it counts the answers. A band whose answers were all wrong
    is drawn as a red line along the axis, so it reads as an accuracy of 0, not as a missing
    bar. The dot sits at the band's mean confidence. Bars below the diagonal mean
    over-confidence, above it under-confidence.
    """
    if before is None:
        fig, ax = plt.subplots(figsize=(5.5, 5.5))
        _reliability_panel(ax, calibration, "Reliability (validation)")
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.5), sharey=True)
        _reliability_panel(left, before, "Before: temperature 1")
        _reliability_panel(right, calibration, f"After: temperature {temperature:.3g}")
    fig.tight_layout()
    return fig


def _reliability_panel(ax: plt.Axes, calibration: dict, title: str) -> None:
    edges = np.asarray(calibration["edges"])
    counts = np.asarray(calibration["counts"])
    accuracy = np.asarray(calibration["accuracy"])
    filled = counts > 0
    centres = (edges[:-1] + edges[1:]) / 2
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.bar(
        centres[filled],
        accuracy[filled],
        width=np.diff(edges)[0],
        alpha=0.7,
        edgecolor="black",
        label="share right in the band",
    )
    ax.plot(
        np.asarray(calibration["mean_confidence"])[filled],
        accuracy[filled],
        "o",
        color="darkred",
        label="band's mean confidence",
    )
    none_right = filled & (accuracy == 0)
    if none_right.any():
        width = np.diff(edges)[0]
        ax.hlines(
            np.full(none_right.sum(), 0.006),
            centres[none_right] - width / 2,
            centres[none_right] + width / 2,
            colors="firebrick",
            linewidth=4,
            label="band with no answer right",
        )
    for centre, share, count in zip(centres[filled], accuracy[filled], counts[filled], strict=True):
        ax.annotate(
            str(count),
            (centre, share),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    for x, y, text, ha, va in (
        (0.97, 0.03, "below the diagonal:\nover-confident", "right", "bottom"),
        (0.03, 0.80, "above the diagonal:\nunder-confident", "left", "top"),
    ):
        ax.text(x, y, text, ha=ha, va=va, fontsize=8, bbox=DIAGONAL_NOTE_BOX)
    ece = calibration["expected_calibration_error"]
    ax.set(
        title=f"{title}, ECE = {ece:.3f}",
        xlabel="Confidence of the answer",
        ylabel="Share of answers that were right",
        xlim=(0, 1),
        ylim=(0, 1.05),
    )
    ax.legend(loc="upper left", fontsize=8)


def grad_cam(
    image: np.ndarray,
    heatmaps: dict[str, np.ndarray],
    suptitle: str = "",
    correct: bool | None = None,
) -> Figure:
    """The painting, then one Grad-CAM overlay per entry of ``heatmaps`` (title -> map).

    Each map is scaled to its own maximum (``explain.grad_cam``), so the colour bar reads
    "share of this map's strongest evidence"; compare artists by their probabilities, not by
    how hot their maps look. ``correct`` colours the title green (right) or red (wrong).
    """
    fig, axes = plt.subplots(
        1, len(heatmaps) + 1, figsize=(2.9 * (len(heatmaps) + 1) + 0.8, 3.3), layout="constrained"
    )
    axes[0].imshow(image)
    axes[0].set_title("painting", fontsize=9)
    shown = None
    for ax, (title, heatmap) in zip(axes[1:], heatmaps.items(), strict=True):
        ax.imshow(image)
        shown = ax.imshow(heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    if shown is not None:
        fig.colorbar(
            shown, ax=list(axes[1:]), shrink=0.8, label="evidence (each map's own max = 1)"
        )
    if suptitle:
        colour = {True: "darkgreen", False: "darkred", None: "black"}[correct]
        mark = {True: " (right)", False: " (wrong)", None: ""}[correct]
        fig.suptitle(suptitle + mark, fontsize=10, color=colour)
    return fig


def attribution(
    image: np.ndarray, probabilities: np.ndarray, class_names: list[str], title: str
) -> Figure:
    """A painting beside a bar chart of its probability for every artist, highest on top."""
    order = np.argsort(probabilities, kind="stable")
    fig, (image_ax, bar_ax) = plt.subplots(
        1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    image_ax.imshow(image)
    image_ax.axis("off")
    image_ax.set_title(title, fontsize=9)
    bar_ax.barh([class_names[i] for i in order], probabilities[order])
    bar_ax.set(
        title=f"Probability among the {len(class_names)} known painters",
        xlabel="Probability",
        xlim=(0, 1),
    )
    bar_ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


PARAMETER_LABELS = {
    "image_size": "Image size (px)",
    "num_epochs": "Epochs",
    "batch_size": "Batch size",
    "learning_rate": "Learning rate",
    "filters": "Filters in the first layer",
    "crop_size": "Crop size (px)",
    "model": "Network",
}


def parameter_label(name: str) -> str:
    """A readable axis label for a notebook parameter: ``image_size`` -> ``Image size (px)``."""
    return PARAMETER_LABELS.get(name, name.replace("_", " ").capitalize())


def label_data(fig: Figure, data: str) -> Figure:
    """Write which data the figure shows below everything else, e.g. "synthetic sample"."""
    fig.supxlabel(f"Data: {data}", x=0.01, ha="left", fontsize=8, color="dimgrey")
    if fig.get_layout_engine() is None or not fig.get_constrained_layout():
        fig.tight_layout()
    return fig


def sweep_summary(rows: list[dict], x_param: str, group_param: str | None = None) -> Figure:
    """Accuracy and training time against ``x_param``, one line per ``group_param`` value.

    Failed runs have no metrics and are left out of the lines.
    """
    x_values = list(dict.fromkeys(row[x_param] for row in rows))
    groups = list(dict.fromkeys(row[group_param] for row in rows)) if group_param else [None]
    fig, (accuracy_ax, time_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for group in groups:
        members = [r for r in rows if group is None or r[group_param] == group]
        done = [r for r in members if r.get("status") == "ok"]
        positions = [x_values.index(r[x_param]) for r in done]
        label = f"{parameter_label(group_param)}: {group}" if group_param else None
        accuracy_ax.plot(positions, [r["accuracy"] for r in done], "o-", label=label)
        time_ax.plot(positions, [r["training_seconds"] for r in done], "o-", label=label)
    for ax, ylabel in ((accuracy_ax, "Validation accuracy"), (time_ax, "Training time (s)")):
        ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
        ax.set(
            xlabel=parameter_label(x_param),
            ylabel=ylabel,
            title=f"{ylabel} by {parameter_label(x_param).lower()}",
        )
        ax.grid(alpha=0.3)
        if group_param:
            ax.legend()
    accuracy_ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig
