"""Predictions, the classification report with the right artist on every row, and metrics."""

import csv
import io
import os
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

# Images predicted at once: a multiple of the batch, so the batches are those of one call.
PREDICT_ROWS = 1024


def predict_proba(model, X: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities for each image, shape (N, number of classes), as float32.

    When the model takes smaller images than ``X`` holds (it was trained on crops), the
    answer is the mean over ten views: the centre and four corner crops, each also
    mirrored. ``X`` is read a slice of ``PREDICT_ROWS`` at a time, so a memory-mapped
    ``X`` is never read into memory whole.
    """
    if len(X) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.concatenate(
        [
            _predict_views(model, np.asarray(X[start : start + PREDICT_ROWS]), batch_size)
            for start in range(0, len(X), PREDICT_ROWS)
        ]
    )


def _predict_views(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    crop_size = model.input_shape[1]
    if X.shape[1] == crop_size:
        return np.asarray(model.predict(X, batch_size=batch_size, verbose=0), dtype=np.float32)
    size_y, size_x = X.shape[1:3]
    top, left = (size_y - crop_size) // 2, (size_x - crop_size) // 2
    corners = [
        (top, left),
        (0, 0),
        (0, size_x - crop_size),
        (size_y - crop_size, 0),
        (size_y - crop_size, size_x - crop_size),
    ]
    views = [X[:, y : y + crop_size, x : x + crop_size] for y, x in corners]
    views += [view[:, :, ::-1] for view in views]
    return np.mean(
        [
            np.asarray(
                model.predict(np.ascontiguousarray(v), batch_size=batch_size, verbose=0),
                dtype=np.float32,
            )
            for v in views
        ],
        axis=0,
    )


def predictions_csv(
    painting_paths: list[Path], y_true: np.ndarray, proba: np.ndarray, class_names: list[str]
) -> str:
    """Every evaluation painting's answer as CSV text: its file, the true and the predicted
    artist, then one column of probability per artist.

    Probabilities are written in full (Python's shortest exact form), so reading them back
    gives the very float32 values the model returned.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["painting", "true_artist", "predicted_artist", *class_names])
    for path, label, row in zip(painting_paths, y_true, proba, strict=True):
        predicted = class_names[int(row.argmax())]
        writer.writerow([path, class_names[int(label)], predicted, *(repr(float(p)) for p in row)])
    return buffer.getvalue()


def read_predictions(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A predictions file written from ``predictions_csv``: the painting files, the true
    labels (indices into the class list of its header) and the float32 probabilities."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    class_names = rows[0][3:]
    paintings = [row[0] for row in rows[1:]]
    y_true = np.array([class_names.index(row[1]) for row in rows[1:]], dtype=int)
    proba = np.array([[float(p) for p in row[3:]] for row in rows[1:]], dtype=np.float32)
    return paintings, y_true, proba.reshape(len(paintings), len(class_names))


def report(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> str:
    """scikit-learn's classification report, one row per artist in class-list order.

    ``labels`` is passed explicitly, so an artist the model never predicts still gets
    its own row and no row can shift onto the wrong name.
    """
    return classification_report(
        y_true,
        y_pred,
        labels=list(range(len(class_names))),
        target_names=class_names,
        digits=3,
        zero_division=0,
    )


def report_dict(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """The classification report as a dictionary, for ``classification_report.json``."""
    return classification_report(
        y_true,
        y_pred,
        labels=list(range(len(class_names))),
        target_names=class_names,
        output_dict=True,
        zero_division=0,
    )


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of true class (rows) against predicted class (columns)."""
    return confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))


def summary_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro and weighted F1, and F1 per artist, as plain floats."""
    labels = list(range(len(class_names)))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "f1_per_artist": {name: float(f1) for name, f1 in zip(class_names, per_class, strict=True)},
        "chance_accuracy": 1 / len(class_names),
    }


def most_confident_mistakes(y_true: np.ndarray, proba: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to ``count`` wrong predictions, most confident first."""
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    confidence = proba[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def most_confused_pairs(
    matrix: np.ndarray, class_names: list[str], count: int = 5
) -> list[tuple[str, str, int, int]]:
    """The pairs of artists mistaken for each other most often, in either direction.

    Each entry is (artist A, artist B, paintings of A called B, paintings of B called A),
    sorted by the total; pairs never confused are left out.
    """
    pairs = []
    for a in range(len(class_names)):
        for b in range(a + 1, len(class_names)):
            a_as_b, b_as_a = int(matrix[a, b]), int(matrix[b, a])
            if a_as_b + b_as_a:
                pairs.append((class_names[a], class_names[b], a_as_b, b_as_a))
    pairs.sort(key=lambda pair: (-(pair[2] + pair[3]), pair[0], pair[1]))
    return pairs[:count]


def reliability(y_true: np.ndarray, proba: np.ndarray, num_bins: int = 10) -> dict:
    """Calibration: per confidence bin, the mean confidence, the accuracy and the count.

    Also the expected calibration error (ECE): the count-weighted mean gap between
    confidence and accuracy. A well-calibrated model's 80% answers are right 80% of the time.
    """
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    filled = counts > 0
    mean_confidence = np.divide(
        np.bincount(bins, confidence, num_bins), counts, out=np.zeros(num_bins), where=filled
    )
    accuracy = np.divide(
        np.bincount(bins, correct.astype(float), num_bins),
        counts,
        out=np.zeros(num_bins),
        where=filled,
    )
    ece = float(np.sum(counts * np.abs(mean_confidence - accuracy)) / max(len(y_true), 1))
    return {
        "edges": edges.tolist(),
        "mean_confidence": mean_confidence.tolist(),
        "accuracy": accuracy.tolist(),
        "counts": counts.tolist(),
        "expected_calibration_error": ece,
    }
