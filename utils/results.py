"""What a run writes once its network has been evaluated: the classification report, every
evaluation painting's probabilities, the training history and ``metrics.json``, in one call
from the notebook.

The figures in ``metrics.json`` are computed here from the probabilities, so the report,
the predictions and the metrics cannot disagree.
"""

from pathlib import Path

import numpy as np

from utils import dataset, evaluation, paths, runs, training
from utils.loading import LoadedDataset


def write(
    run_dir: Path,
    data: LoadedDataset,
    proba_val: np.ndarray,
    curves: dict[str, list[float]],
    run_facts: dict,
    proba_before_temperature: np.ndarray | None = None,
) -> dict:
    """Write ``classification_report.txt`` and ``.json``, ``predictions.csv``, ``history.csv``
    and ``metrics.json`` to ``run_dir`` for the evaluation split's probabilities ``proba_val``
    (one row per painting of ``data.val``), and return the metrics.

    ``curves`` is the training history; ``run_facts`` adds what only the notebook knows
    (the settings, the epochs, the seconds of training, what ``evaluate`` measured...). When
    ``run_facts["head_only_epochs"]`` is set, ``history.csv`` names each epoch's phase.
    A run whose loss became NaN or infinite is refused (``training.require_finite``) before
    anything is written, so that it is marked failed rather than finished.

    When a temperature was applied (``utils/calibration.py``), ``proba_before_temperature``
    gives the probabilities before it, and ``metrics.json`` keeps their reliability too.
    """
    training.require_finite(curves)
    head_epochs = run_facts.get("head_only_epochs")
    epochs = len(next(iter(curves.values()), []))
    phases = training.phases(epochs, head_epochs) if head_epochs is not None else None
    runs.write_history_csv(run_dir / "history.csv", curves, phases)
    class_names = data.class_names
    y_val, y_pred = data.val.y, proba_val.argmax(axis=1)
    confusion = evaluation.confusion(y_val, y_pred, len(class_names))
    calibration = evaluation.reliability(y_val, proba_val)
    runs.write_text(
        run_dir / "classification_report.txt", evaluation.report(y_val, y_pred, class_names)
    )
    runs.write_json(
        run_dir / "classification_report.json", evaluation.report_dict(y_val, y_pred, class_names)
    )
    runs.write_text(
        run_dir / "predictions.csv",
        evaluation.predictions_csv(
            [paths.display(p) for p in data.val.paths], y_val, proba_val, class_names
        ),
    )
    metrics = evaluation.summary_metrics(y_val, y_pred, class_names) | {
        "expected_calibration_error": calibration["expected_calibration_error"],
        "reliability": calibration,
        **_before_temperature(y_val, proba_before_temperature, proba_val),
        "confusion_matrix": confusion.tolist(),
        "most_confused_pairs": evaluation.most_confused_pairs(confusion, class_names),
        "class_names": class_names,
        **run_facts,
        "images": {"training": len(data.train.y), "validation": len(y_val)},
        "images_per_artist": {
            "training": dataset.counts_per_class(class_names, data.train.y),
            "validation": dataset.counts_per_class(class_names, y_val),
        },
        "skipped_files": [str(item.path) for item in data.skipped],
        "final_epoch": {name: values[-1] for name, values in curves.items() if values},
        "peak_memory_mib": runs.peak_memory_mib(),
        "versions": runs.library_versions(),
    }
    runs.write_json(run_dir / "metrics.json", metrics)
    return metrics


def _before_temperature(y_val: np.ndarray, proba: np.ndarray | None, after: np.ndarray) -> dict:
    if proba is None or np.array_equal(proba, after):  # temperature 1: nothing changed
        return {}
    before = evaluation.reliability(y_val, proba)
    return {
        "expected_calibration_error_before_temperature": before["expected_calibration_error"],
        "reliability_before_temperature": before,
    }
