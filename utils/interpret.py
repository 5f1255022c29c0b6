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
        f"After {epochs} epochs the network gets {train[-1]:.1%} of the training paintings "
        f"right and {val[-1]:.1%} of the validation paintings. "
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
        text += f"The two lie within {_points(OVERFITTING_GAP)}: no sign of overfitting yet."
    best = int(np.argmax(val))
    if best < epochs - 1 and val[best] - val[-1] > OVERFITTING_GAP / 2:
        text += (
            f" Validation accuracy peaked at {val[best]:.1%} in epoch {best + 1} and fell "
            "afterwards, so later epochs did not help."
        )
    return text


def errors(metrics: dict, pairs: list[tuple[str, str, int, int]], num_images: int) -> str:
    """Who is recognised, who is not, and which artists are mixed up, with counts."""
    f1 = metrics["f1_per_artist"]
    best = max(f1, key=f1.get)
    worst = min(f1, key=f1.get)
    text = (
        f"Accuracy is {metrics['accuracy']:.1%} against {metrics['chance_accuracy']:.0%} for "
        f"guessing. {best} is recognised best (F1 {f1[best]:.2f}), {worst} worst "
        f"(F1 {f1[worst]:.2f}). "
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


def calibration(reliability: dict, accuracy: float) -> str:
    """Whether the model's confidence can be taken at its word, from ``reliability``."""
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
    text += f"The expected calibration error is {reliability['expected_calibration_error']:.3f}."
    return text
