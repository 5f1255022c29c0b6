"""Predictions, the classification report with the right artist on every row, and metrics."""

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score


def predict_proba(model, X: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities for each image, shape (N, number of classes)."""
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0))


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
