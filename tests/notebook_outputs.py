"""The notebook's cells that nbval does not compare digit for digit, and what they must say.

A cell whose output is computed from trained weights (accuracies, sentences written from
them, probabilities) is tagged ``nbval-ignore-output``: another processor, or another
thread count, rounds float32 differently, and after a few epochs those last digits become
other accuracies, other sentences. Ignoring such a cell is allowed only with a check here:
``TRAINED`` maps a piece of each cell's source to a function that recomputes what the cell
must show from the run folder's saved files. ``EXEMPT`` names the ignored cells that show
training logs with times, which nothing recomputes.
"""

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from utils import (
    evaluation,
    explain,
    images,
    interpret,
    models,
    paths,
    predict,
    similar,
    training,
)

IGNORE_OUTPUT = "nbval-ignore-output"
# What every finished run holds (besides grad_cam/).
FIGURES = {
    "class_balance",
    "paintings_per_artist",
    "image_sizes",
    "resizing",
    "learning_curves",
    "overfitting",
    "confusion_matrix",
    "mistakes",
    "f1_per_artist",
    "reliability",
    "attribution",
    "attribution_grad_cam",
}
ARTIFACTS = {
    "notebook.ipynb",
    "status.json",
    "model.keras",
    "model_info.json",
    "history.csv",
    "metrics.json",
    "classification_report.txt",
    "classification_report.json",
    "predictions.csv",
    "embeddings.npz",
} | {f"{name}.png" for name in FIGURES}


def output_text(outputs: Iterable[dict]) -> str:
    """What a cell printed and displayed as text: its standard output and Markdown, in order.

    A figure's ``<Figure size ...>`` line is left out (it does not depend on training), and
    so are warnings on standard error (Matplotlib's about a 240-character artist name).
    """
    parts = []
    for output in outputs:
        if "text" in output:
            if output.get("name") == "stdout":
                parts.append(output["text"])
        elif "text/markdown" in output.get("data", {}):
            parts.append(output["data"]["text/markdown"])
    return "".join(parts)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _predictions(run_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    paintings, y_true, proba = evaluation.read_predictions(run_dir / "predictions.csv")
    return paintings, y_true, proba, _metrics(run_dir)["class_names"]


def _evaluated(run_dir: Path) -> str:
    evaluated = _metrics(run_dir)["evaluate"]
    return f"model.evaluate: loss {evaluated['loss']:.3f}, accuracy {evaluated['accuracy']:.1%}\n"


def _scores(run_dir: Path) -> str:
    metrics = _metrics(run_dir)
    return (
        f"Accuracy {metrics['accuracy']:.1%}, macro F1 {metrics['macro_f1']:.3f} "
        f"({metrics['evaluated_on']})\n"
    )


def _report(run_dir: Path) -> str:
    return (run_dir / "classification_report.txt").read_text() + "\n"


def _training_log(run_dir: Path) -> Path:
    """The run's training log: section 7's, in ``transfer/``, when the run's network is the
    ImageNet one, else section 6's."""
    if _metrics(run_dir)["parameters"]["model"] in models.PRETRAINED:
        return run_dir / training.TRANSFER_DIR / training.TRAINING_LOG
    return run_dir / training.TRAINING_LOG


def _learning(run_dir: Path) -> str:
    return interpret.learning(training.read_history(_training_log(run_dir)))


def _errors(run_dir: Path) -> str:
    metrics = _metrics(run_dir)
    pairs = [tuple(pair) for pair in metrics["most_confused_pairs"]]
    return interpret.errors(metrics, pairs, metrics["images"]["validation"])


def _calibration(run_dir: Path) -> str:
    metrics = _metrics(run_dir)
    return interpret.calibration(
        metrics["reliability"], metrics["accuracy"], metrics.get("reliability_before_temperature")
    )


def _errors_and_calibration(run_dir: Path) -> str:
    """The cell of the mistakes and the reliability diagram: the sentences on this run's
    errors, then those on its calibration."""
    return _errors(run_dir) + _calibration(run_dir)


def _grad_cam(run_dir: Path) -> str:
    return interpret.grad_cam(explain.load_cases(run_dir / "grad_cam" / "cases.npz"))


def _painting(run_dir: Path) -> Path:
    """The painting section 13 attributes (``predict.painting_to_attribute``)."""
    settings = _metrics(run_dir)["parameters"]
    paintings, y_true, _, class_names = _predictions(run_dir)
    evaluation_paths = [paths.resolve(p) for p in paintings]
    # <sample>/validation/validation/<Artist>/<file>
    sample_dir = None if settings["data_dir"] else evaluation_paths[0].parents[3]
    return predict.painting_to_attribute(
        settings["painting"],
        settings["suspected_artist"],
        sample_dir,
        evaluation_paths,
        y_true,
        class_names,
    )


def _new_painting(run_dir: Path) -> str:
    """The saved model's answer for the run's painting, recomputed in this process."""
    trained = predict.load_trained_model(run_dir / "model.keras")
    attribution = predict.attribute(trained, [_painting(run_dir)])
    return predict.format_table(attribution, trained.class_names) + "\n"


def _attribution_maps(run_dir: Path) -> str:
    """The sentence on the new painting's two Grad-CAM maps, from maps recomputed with the
    saved model: the top answer's, then the claimed painter's or the second choice's."""
    trained = predict.load_trained_model(run_dir / "model.keras")
    [answer] = predict.attribute(trained, [_painting(run_dir)])
    claimed = predict.class_index(
        trained.class_names, _metrics(run_dir)["parameters"]["suspected_artist"]
    )
    first, second = np.argsort(-answer.probabilities)[:2]
    compared = [int(first), claimed if claimed != first else int(second)]
    image, _ = images.load_image(_painting(run_dir), trained.image_size, trained.resize_mode)
    view = training.centre_crop(image[np.newaxis], trained.input_size)[0]
    maps = [
        (trained.class_names[i], answer.probabilities[i], explain.grad_cam(trained.model, view, i))
        for i in compared
    ]
    return interpret.attribution_maps(maps, trained.class_names[claimed])


def _transfer(run_dir: Path) -> str:
    """The sentence comparing transfer learning with the run's own network; nothing when
    the run's own network is the ImageNet one."""
    comparison = run_dir / training.TRANSFER_DIR / "comparison.json"
    if not comparison.exists():
        return ""
    curves = training.read_history(run_dir / training.TRANSFER_DIR / training.TRAINING_LOG)
    return interpret.transfer(json.loads(comparison.read_text()), curves)


def _similar_paintings(run_dir: Path) -> str:
    """The closest training paintings, from the saved gallery and the painting itself."""
    info = json.loads((run_dir / predict.MODEL_INFO).read_text())
    image, _ = images.load_image(_painting(run_dir), info["image_size"], info["resize_mode"])
    gallery = similar.load(run_dir / similar.GALLERY_FILE)
    return similar.describe(gallery, similar.embed(image[np.newaxis])[0]) + "\n"


def _maps_and_similar_paintings(run_dir: Path) -> str:
    """The cell after the new painting's answer: the sentence on its two maps, then its
    closest training paintings."""
    return _attribution_maps(run_dir) + _similar_paintings(run_dir)


# A piece of the cell's source -> what the cell must show, recomputed from the run folder.
# The scores cell also lists the folder's files, which grow as the run goes on: only its
# first two lines are recomputed.
TRAINED: dict[str, Callable[[Path], str]] = {
    "proba_val = evaluation.predict_proba(": _evaluated,
    "metrics = results.write(": _scores,
    "report = classification_report(": _report,
    "interpret.learning(": _learning,
    "interpret.errors(": _errors_and_calibration,
    "interpret.grad_cam(explained)": _grad_cam,
    "predict.attribute(trained": _new_painting,
    "similar.describe(": _maps_and_similar_paintings,
    "interpret.transfer(": _transfer,
}
FIRST_LINES_ONLY = {"metrics = results.write(": 1}
EXEMPT = {
    "history = network.fit(": "the training log, with times per step",
    "features_of.predict(": "the seconds the ImageNet features took",
    "head_history = learner.fit(": "transfer learning's training log, with times",
    "fine_history = transfer_network.fit(": "transfer learning's fine-tuning log, with times",
    "display(explorer, stepper)": "the two widgets, whose model ids change with every run",
}


def marker_of(source: str) -> str | None:
    """The ``TRAINED`` or ``EXEMPT`` key found in a cell's source, if any."""
    found = [marker for marker in (*TRAINED, *EXEMPT) if marker in source]
    assert len(found) <= 1, f"a cell matches several markers: {found}"
    return found[0] if found else None


def check_trained_cells(code_cells: list[dict], shown: list[str], run_dir: Path) -> int:
    """Each trained-number cell showed exactly what the run's files say; returns how many
    were checked. ``shown`` is each code cell's ``output_text`` from that run."""
    checked = 0
    for cell, text in zip(code_cells, shown, strict=True):
        marker = marker_of(cell["source"])
        if marker not in TRAINED:
            continue
        expected = TRAINED[marker](run_dir)
        if marker in FIRST_LINES_ONLY:
            text = "".join(text.splitlines(keepends=True)[: FIRST_LINES_ONLY[marker]])
        assert text == expected, f"{marker!r} showed:\n{text}\nthe run's files say:\n{expected}"
        checked += 1
    return checked


def check_artifacts_agree(run_dir: Path) -> dict:
    """The report, the confusion matrix, the predictions and the metrics tell one story.

    Returns the metrics, for further checks.
    """
    metrics = _metrics(run_dir)
    class_names = metrics["class_names"]
    confusion = np.array(metrics["confusion_matrix"])
    _, y_true, proba, _ = _predictions(run_dir)
    y_pred = proba.argmax(axis=1)
    assert np.array_equal(confusion, evaluation.confusion(y_true, y_pred, len(class_names)))
    assert metrics["accuracy"] == np.trace(confusion) / confusion.sum()
    report = json.loads((run_dir / "classification_report.json").read_text())
    for label, name in enumerate(class_names):
        row = report[name]
        correct, support, called = (
            confusion[label, label],
            confusion[label].sum(),
            confusion[:, label].sum(),
        )
        assert row["support"] == support, name
        assert np.isclose(row["recall"], correct / support if support else 0.0), name
        assert np.isclose(row["precision"], correct / called if called else 0.0), name
        assert np.isclose(row["f1-score"], metrics["f1_per_artist"][name]), name
    text_rows = (run_dir / "classification_report.txt").read_text().splitlines()[2:]
    assert [line.split()[0] for line in text_rows[: len(class_names)]] == class_names
    assert sum(metrics["reliability"]["counts"]) == len(y_true)
    check_transfer_comparison(run_dir, metrics)
    return metrics


def check_transfer_comparison(run_dir: Path, metrics: dict) -> None:
    """Section 7 trained EfficientNet-Lite0 in every run, as the run's own network or beside
    it, and kept its training log and learning curves in ``transfer/``; beside a network
    trained from scratch it saved the comparison its sentence shows."""
    settings = metrics["parameters"]
    folder = run_dir / training.TRANSFER_DIR
    compared = settings["model"] not in models.PRETRAINED
    expected = {"training_log.csv", "learning_curves.png"} | (
        {"comparison.json"} if compared else set()
    )
    assert {p.name for p in folder.iterdir()} == expected
    epochs = len(training.read_history(folder / training.TRAINING_LOG)["loss"])
    budget = training.epochs_for_budget(
        settings["head_epochs"] + settings["fine_tune_epochs"],
        settings["training_budget"],
        metrics["images"]["training"],
    )
    assert epochs == budget
    if not compared:
        assert metrics["epochs"] == epochs
        return
    comparison = json.loads((folder / "comparison.json").read_text())
    assert comparison["head_epochs"] == min(settings["head_epochs"], epochs)
    assert comparison["head_epochs"] + comparison["fine_tune_epochs"] == epochs
    assert comparison["unfreeze_blocks"] == settings["unfreeze_blocks"]
    assert comparison["images_seen"]["transfer"] == epochs * metrics["images"]["training"]
    assert comparison["scratch"]["accuracy"] == metrics["evaluate"]["accuracy"]
