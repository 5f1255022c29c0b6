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
    explore,
    images,
    interpret,
    models,
    paths,
    predict,
    sample_data,
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


def _scores(run_dir: Path) -> str:
    metrics = _metrics(run_dir)
    evaluated = metrics["evaluate"]
    return (
        f"model.evaluate: loss {evaluated['loss']:.3f}, accuracy {evaluated['accuracy']:.1%}\n"
        f"Accuracy {metrics['accuracy']:.1%}, macro F1 {metrics['macro_f1']:.3f} "
        f"({metrics['evaluated_on']})\n"
    )


def _report(run_dir: Path) -> str:
    return (run_dir / "classification_report.txt").read_text() + "\n"


def _learning(run_dir: Path) -> str:
    return interpret.learning(training.read_history(run_dir / training.TRAINING_LOG))


def _errors(run_dir: Path) -> str:
    metrics = _metrics(run_dir)
    pairs = [tuple(pair) for pair in metrics["most_confused_pairs"]]
    return interpret.errors(metrics, pairs, metrics["images"]["validation"])


def _calibration(run_dir: Path) -> str:
    metrics = _metrics(run_dir)
    return interpret.calibration(metrics["reliability"], metrics["accuracy"])


def _grad_cam(run_dir: Path) -> str:
    return interpret.grad_cam(explain.load_cases(run_dir / "grad_cam" / "cases.npz"))


def _explorer(run_dir: Path) -> str:
    _, y_true, proba, class_names = _predictions(run_dir)
    explored = len(y_true) // 2
    mistakes = explore.mistake_order(y_true, proba)
    return (
        explore.painting_summary(explored, y_true, proba, class_names)
        + "\n"
        + explore.mistake_summary(0, mistakes, y_true, proba, class_names)
        + "\n"
    )


def _painting(run_dir: Path) -> Path:
    """The painting section 13 attributes: the ``painting`` parameter; else, on the sample,
    its unseen painting by the suspected artist; else that artist's first validation
    painting."""
    settings = _metrics(run_dir)["parameters"]
    if settings["painting"]:
        return paths.resolve(settings["painting"])
    paintings, y_true, _, class_names = _predictions(run_dir)
    if not settings["data_dir"]:  # <sample>/validation/validation/<Artist>/<file>
        sample_dir = paths.resolve(paintings[0]).parents[3]
        return sample_data.unseen_painting(sample_dir, settings["suspected_artist"])
    return predict.example_painting(
        [paths.resolve(p) for p in paintings], y_true, class_names, settings["suspected_artist"]
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
    the run made no comparison (an ImageNet network's own run, or too small images)."""
    transfer_metrics = run_dir / "transfer" / "metrics.json"
    if not transfer_metrics.exists():
        return ""
    return interpret.transfer(json.loads(transfer_metrics.read_text()), _metrics(run_dir))


def _similar_paintings(run_dir: Path) -> str:
    """The closest training paintings, from the saved gallery and the painting itself."""
    info = json.loads((run_dir / predict.MODEL_INFO).read_text())
    image, _ = images.load_image(_painting(run_dir), info["image_size"], info["resize_mode"])
    gallery = similar.load(run_dir / similar.GALLERY_FILE)
    return similar.describe(gallery, similar.embed(image[np.newaxis])[0]) + "\n"


def _new_painting_and_its_maps(run_dir: Path) -> str:
    """The new painting's cell: the answer's table, then the sentence on its two maps."""
    return _new_painting(run_dir) + _attribution_maps(run_dir)


# A piece of the cell's source -> what the cell must show, recomputed from the run folder.
# The scores cell also lists the folder's files, which grow as the run goes on: only its
# first two lines are recomputed.
TRAINED: dict[str, Callable[[Path], str]] = {
    "proba_val = evaluation.predict_proba(": _scores,
    "print(report)": _report,
    "interpret.learning(": _learning,
    "interpret.errors(": _errors,
    "interpret.calibration(": _calibration,
    "interpret.grad_cam(explained)": _grad_cam,
    "explore.painting_summary(": _explorer,
    "predict.attribute(trained": _new_painting_and_its_maps,
    "similar.describe(": _similar_paintings,
    "interpret.transfer(": _transfer,
}
FIRST_LINES_ONLY = {"proba_val = evaluation.predict_proba("}
EXEMPT = {
    "learner.fit(\n    train_data,": "the training log, with times per step",
    "initial_epoch=head_only_epochs": "the fine-tuning log, with times per step",
    "head_history = transfer_network.fit(": "transfer learning's training log, with times",
    "fine_history = transfer_network.fit(": "transfer learning's fine-tuning log, with times",
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
            text = "".join(text.splitlines(keepends=True)[:2])
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
    """Section 11 trained its ImageNet network beside every network trained from scratch
    (images of 32 px or more, in memory) and saved what its sentence and figure show."""
    settings = metrics["parameters"]
    folder = run_dir / "transfer"
    compared = (
        settings["model"] not in models.PRETRAINED
        and settings["image_size"] >= models.MIN_INPUT_SIZE["efficientnet_lite0"]
        and settings["data_mode"] != "disk"
    )
    assert folder.is_dir() == compared, f"{folder} should exist: {compared}"
    if not compared:
        return
    assert {p.name for p in folder.iterdir()} == {
        "metrics.json",
        "history.csv",
        "learning_curves.png",
    }
    transfer = json.loads((folder / "metrics.json").read_text())
    epochs = transfer["head_epochs"] + transfer["fine_tune_epochs"]
    assert transfer["head_epochs"] == settings["head_epochs"]
    assert transfer["unfreeze_blocks"] == settings["unfreeze_blocks"]
    assert transfer["images_seen"] == epochs * metrics["images"]["training"]
    rows = (folder / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + epochs
    assert [row.rsplit(",", 1)[1] for row in rows[1:]] == training.phases(
        epochs, transfer["head_epochs"]
    )
    assert 0.0 <= transfer["accuracy"] <= 1.0 and transfer["seconds"] > 0
