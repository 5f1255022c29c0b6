"""This run's results in plain sentences, written from its numbers, never from fixed prose.

The notebook shows them as Markdown after each figure, so they stay true whatever the
parameters: another data set, model or seed gives other sentences.
"""

import numpy as np

# A gap between training and validation accuracy above this is called overfitting.
OVERFITTING_GAP = 0.10
# Mean confidence this far above (or below) accuracy is called over- (or under-) confident.
CALIBRATION_MARGIN = 0.05


def _points(share: float) -> str:
    return f"{100 * share:.1f} points"


def learning(history: dict[str, list[float]]) -> str:
    """What the learning curves say: the final accuracies, their gap, the best epoch."""
    train, val = history["accuracy"], history.get("val_accuracy")
    epochs = len(train)
    if not val:
        return f"After {epochs} epochs the training accuracy is {train[-1]:.1%}."
    gap = train[-1] - val[-1]
    text = (
        f"In its last epoch (of {epochs}) the network got {train[-1]:.1%} of the training "
        "paintings right, counted while it was still learning, with dropout and flips on; "
        f"measured after that epoch, it gets {val[-1]:.1%} of the validation paintings right. "
    )
    if gap > OVERFITTING_GAP:
        text += (
            f"The gap of {_points(gap)} means it has partly **memorised** the training "
            "paintings (overfitting): more data, augmentation or a smaller network would help."
        )
    elif gap < -OVERFITTING_GAP:
        text += (
            "Validation is the higher of the two, which happens when training sees harder, "
            "augmented views (random crops, jitter, dropout) than validation does."
        )
    else:
        text += (
            f"The two lie {_points(abs(gap))} apart, less than the {_points(OVERFITTING_GAP)} "
            "that would suggest memorising: no sign of overfitting yet."
        )
    best = int(np.argmax(val))
    if best < epochs - 1 and val[best] - val[-1] > OVERFITTING_GAP / 2:
        text += (
            f" Validation accuracy peaked at {val[best]:.1%} in epoch {best + 1} and fell "
            "afterwards, so later epochs did not help."
        )
    return text


def _names_at(scores: dict[str, float], value: float) -> str:
    """Who scored exactly ``value``, with its verb: "Matisse is", "Gauguin and Matisse are"."""
    names = [name for name, score in scores.items() if score == value]
    if len(names) == 1:
        return f"{names[0]} is"
    return f"{', '.join(names[:-1])} and {names[-1]} are"


def errors(metrics: dict, pairs: list[tuple[str, str, int, int]], num_images: int) -> str:
    """Who is recognised, who is not, and which artists are mixed up, with counts."""
    f1 = metrics["f1_per_artist"]
    best, worst = max(f1.values()), min(f1.values())
    text = (
        f"Accuracy is {metrics['accuracy']:.1%} against {metrics['chance_accuracy']:.0%} for "
        f"guessing. "
    )
    if best == worst:
        text += f"Every artist is recognised equally well (F1 {best:.2f}). "
    else:
        text += (
            f"{_names_at(f1, best)} recognised best (F1 {best:.2f}), "
            f"{_names_at(f1, worst)} worst (F1 {worst:.2f}). "
        )
    if pairs:
        a, b, a_as_b, b_as_a = pairs[0]
        text += (
            f"The pair mixed up most is {a} and {b}: {a_as_b} {a} called {b}, "
            f"{b_as_a} {b} called {a}. "
        )
    else:
        text += "No artist was mistaken for another. "
    text += (
        f"With {num_images} evaluation paintings, one painting is {_points(1 / num_images)} "
        "of accuracy, so two runs a few paintings apart are not really different."
    )
    return text


def calibration(reliability: dict, accuracy: float, before: dict | None = None) -> str:
    """Whether the model's confidence can be taken at its word, from ``reliability``; with
    ``before`` (the reliability before a temperature was applied), what the temperature did."""
    counts = np.asarray(reliability["counts"])
    confidences = np.asarray(reliability["mean_confidence"])
    mean_confidence = float(np.sum(counts * confidences) / max(counts.sum(), 1))
    text = (
        f"On average the model is {mean_confidence:.1%} sure of its answer and right "
        f"{accuracy:.1%} of the time. "
    )
    if mean_confidence > accuracy + CALIBRATION_MARGIN:
        text += "It is **over-confident**: discount its probabilities. "
    elif mean_confidence < accuracy - CALIBRATION_MARGIN:
        text += "It is **under-confident**: it is right more often than it claims. "
    else:
        text += "Its confidence is about right overall. "
    top = counts[-1]
    if top:
        text += (
            f"Of its {top} answers given with {reliability['edges'][-2]:.0%} or more, "
            f"{reliability['accuracy'][-1]:.0%} were right. "
        )
    text += f"The expected calibration error is {reliability['expected_calibration_error']:.3f}"
    if before is None:
        return text + "."
    return text + (
        f", against {before['expected_calibration_error']:.3f} before the temperature "
        "(fitted on paintings this run never scores; the answers themselves did not change)."
    )


# The outer band of a painting, as a share of its side, where frames and signatures sit.
BORDER_BAND = 0.1
# Evidence this concentrated in the band (it covers 36% of the area) deserves a look.
BORDER_WARNING = 0.5


# A ninth of the painting with at least this share of the evidence is named in the sentence.
NAMED_SHARE = 0.25
NINTHS = (
    ("upper left", "upper centre", "upper right"),
    ("middle left", "centre", "middle right"),
    ("lower left", "lower centre", "lower right"),
)


def evidence_layout(heatmap: np.ndarray) -> dict[str, float | str]:
    """Where one Grad-CAM map puts its evidence.

    ``focus`` is the smallest share of the painting's area that holds half of the evidence
    (small: a few spots decided; near 0.5: spread evenly). ``border`` is the share of the
    evidence in the outer band of width ``BORDER_BAND``. ``where`` names each ninth of the
    painting that holds at least ``NAMED_SHARE`` of the evidence ("mostly in the upper
    centre and the lower centre"), or says it is spread across the painting. (A centre of
    mass would put evidence at the top and at the bottom in the middle.)
    """
    total = float(heatmap.sum())
    if total <= 0:
        return {"focus": 0.0, "border": 0.0, "where": ""}
    ordered = np.sort(heatmap, axis=None)[::-1]
    focus = (np.searchsorted(np.cumsum(ordered), total / 2) + 1) / ordered.size
    height, width = heatmap.shape
    band_rows, band_columns = (
        max(1, round(height * BORDER_BAND)),
        max(1, round(width * BORDER_BAND)),
    )
    inner = heatmap[band_rows : height - band_rows, band_columns : width - band_columns].sum()
    ninth_sums = {
        NINTHS[row][column]: float(part.sum())
        for row, band in enumerate(np.array_split(heatmap, 3, axis=0))
        for column, part in enumerate(np.array_split(band, 3, axis=1))
    }
    strongest = [
        name
        for name in sorted(ninth_sums, key=ninth_sums.get, reverse=True)
        if ninth_sums[name] >= NAMED_SHARE * total
    ]
    where = (
        "mostly in the " + " and the ".join(strongest)
        if strongest
        else "spread across the painting"
    )
    return {"focus": float(focus), "border": 1 - float(inner) / total, "where": where}


def attribution_maps(maps: list[tuple[str, float, np.ndarray]], claimed: str) -> str:
    """What the new painting's Grad-CAM maps show: where each artist's evidence lies.

    ``maps`` holds (artist, probability, map) for the top answer, then for the claimed
    painter or, when the model agrees with the claim, for its second choice.
    """
    sentences = []
    for rank, (artist, probability, heatmap) in enumerate(maps):
        role = (
            "the top answer"
            if rank == 0
            else ("the claimed painter" if artist == claimed else "the second choice")
        )
        layout = evidence_layout(heatmap)
        if not layout["where"]:
            sentences.append(f"No region raised the score of {artist} ({probability:.0%}, {role}).")
            continue
        sentences.append(
            f"The evidence for {artist} ({probability:.0%}, {role}) lies "
            f"{layout['where']}; half of it is in {layout['focus']:.0%} of the painting."
        )
    sentences.append(
        "Each map is scaled to its own strongest evidence, so the maps compare where the "
        "model looked, not how much it found: the probabilities say that."
    )
    return " ".join(sentences)


def grad_cam(cases: list[tuple[str, str, float, np.ndarray]]) -> str:
    """What the Grad-CAM maps shown show, one sentence per painting and one on frames.

    Each case is (true artist, predicted artist, its probability, the map for the
    prediction).
    """
    if not cases:
        return "No evaluation painting was available to explain."
    sentences = []
    near_border = []
    focus = []
    for true, predicted, probability, heatmap in cases:
        layout = evidence_layout(heatmap)
        focus.append(layout["focus"])
        verdict = "rightly" if true == predicted else f"wrongly (it is a {true})"
        if not layout["where"]:
            sentences.append(
                f"For the {true}, called {predicted} {verdict} at {probability:.0%}, no region "
                "raised the score: the answer came from what the painting lacks elsewhere."
            )
            continue
        sentences.append(
            f"The {true} was called {predicted} {verdict} at {probability:.0%}; half of the "
            f"evidence lies in {layout['focus']:.0%} of the painting, {layout['where']}."
        )
        if layout["border"] > BORDER_WARNING:
            near_border.append(true)
    spread = (
        "a few small regions decide"
        if float(np.median(focus)) < 0.15
        else "the evidence is spread over large areas"
    )
    text = " ".join(sentences) + f" Across these paintings {spread}."
    if near_border:
        text += (
            f" In the {', '.join(near_border)} most of the evidence sits in the outer "
            f"{BORDER_BAND:.0%} of the painting: check for a frame, a signature or a border "
            "before trusting that answer."
        )
    else:
        text += (
            f" None of them leans on the outer {BORDER_BAND:.0%} of the painting, where "
            "frames and signatures would sit."
        )
    return text


def transfer(comparison: dict, transfer_curves: dict[str, list[float]]) -> str:
    """What ImageNet's features gave against the run's own network, trained from scratch.

    ``comparison`` is what the notebook's transfer-learning section saves
    (``transfer/comparison.json``): both networks' ``evaluate`` on the evaluation
    paintings, the epochs of each phase, the images each network saw and its seconds.
    ``transfer_curves`` is the transfer network's history: the validation accuracy at the
    end of the head's epochs is what the frozen features gave alone.
    """
    transfer, scratch = comparison["transfer"], comparison["scratch"]
    images, seconds = comparison["images_seen"], comparison["seconds"]
    head_epochs, epochs = (
        comparison["head_epochs"],
        comparison["head_epochs"] + comparison["fine_tune_epochs"],
    )
    if head_epochs and comparison["fine_tune_epochs"]:
        frozen = transfer_curves["val_accuracy"][head_epochs - 1]
        text = (
            f"Frozen ImageNet features and a new head got **{frozen:.1%}** of the evaluation "
            f"paintings right after {head_epochs} epochs. Fine-tuning the top "
            f"{comparison['unfreeze_blocks']} blocks for {comparison['fine_tune_epochs']} more "
            "epochs gave "
        )
    else:
        text = f"EfficientNet-Lite0 trained for {epochs} epochs got "
    text += (
        f"**{transfer['accuracy']:.1%}**, after {images['transfer']:,} training images in "
        f"{seconds['transfer']:.0f} s. The `{comparison['model']}` network trained from "
        f"scratch in section 6 got **{scratch['accuracy']:.1%}** after {images['scratch']:,} "
        f"images in {seconds['scratch']:.0f} s (both as `evaluate` measures them, one view "
        "per painting). "
    )
    gain = transfer["accuracy"] - scratch["accuracy"]
    if abs(gain) < 0.01:
        return text + "Here the two are level."
    if gain > 0:
        return text + f"Starting from ImageNet gained {_points(gain)}."
    return (
        text + f"Here starting from ImageNet was {_points(-gain)} behind: a few epochs on small "
        "images are not enough for it (on real paintings it leads by far: section 14)."
    )
