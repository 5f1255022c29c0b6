"""The painting explorer and the mistakes stepper: the plain functions behind them, and
that setting a control (as a click in JupyterLab would) changes what the widget shows."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils import explore, models, similar

CLASS_NAMES = ["Cezanne", "Degas", "Monet"]
SIZE = 16

# Six paintings: 0, 2 and 4 are right; 1, 3 and 5 are wrong, at 60%, 90% and 45%.
Y_TRUE = np.array([0, 1, 2, 0, 1, 2])
PROBA = np.array(
    [
        [0.70, 0.20, 0.10],
        [0.60, 0.30, 0.10],
        [0.10, 0.10, 0.80],
        [0.05, 0.90, 0.05],
        [0.25, 0.50, 0.25],
        [0.45, 0.20, 0.35],
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="module")
def model():
    return models.build_model("cnn", SIZE, len(CLASS_NAMES), filters=4)


@pytest.fixture(scope="module")
def paintings():
    """Random paintings a little larger than the model's input, as with crop_size."""
    shape = (len(Y_TRUE), SIZE + 4, SIZE + 4, 3)
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(autouse=True)
def no_figure_left_open():
    plt.close("all")  # what another test file left open in this worker is not this test's
    yield
    assert plt.get_fignums() == [], "a figure was left open: the notebook would show it again"


def test_top_artists_most_probable_first():
    assert explore.top_artists(PROBA[3], CLASS_NAMES) == [
        ("Degas", pytest.approx(0.90)),
        ("Cezanne", pytest.approx(0.05)),
        ("Monet", pytest.approx(0.05)),
    ]
    assert [name for name, _ in explore.top_artists(PROBA[5], CLASS_NAMES, k=2)] == [
        "Cezanne",
        "Monet",
    ]


def test_top_artists_keeps_class_order_among_ties_and_caps_k():
    even = np.full(4, 0.25)
    names = ["A", "B", "C", "D"]
    assert [name for name, _ in explore.top_artists(even, names)] == ["A", "B", "C"]
    assert len(explore.top_artists(PROBA[0], CLASS_NAMES, k=10)) == len(CLASS_NAMES)


def test_painting_options_are_index_and_true_artist():
    options = explore.painting_options(Y_TRUE, CLASS_NAMES)
    assert options[0] == ("0: Cezanne", 0)
    assert options[4] == ("4: Degas", 4)
    assert len(options) == len(Y_TRUE)


def test_painting_summary_lists_the_top_three_and_marks_the_true_artist():
    lines = explore.painting_summary(1, Y_TRUE, PROBA, CLASS_NAMES).splitlines()
    assert lines[0] == "Painting 1, by Degas. The model's top 3:"
    assert [line.split()[1] for line in lines[1:]] == ["Cezanne", "Degas", "Monet"]
    assert "60.0%" in lines[1] and "30.0%" in lines[2]
    assert "true artist" in lines[2] and "true artist" not in lines[1]


def test_mistakes_most_confident_first():
    mistakes = explore.mistake_order(Y_TRUE, PROBA)
    assert mistakes.tolist() == [3, 1, 5]
    text = explore.mistake_summary(0, mistakes, Y_TRUE, PROBA, CLASS_NAMES)
    assert text.splitlines() == [
        "Mistake 1 of 3: painting 3",
        "  true artist:      Cezanne (5.0%)",
        "  predicted artist: Degas (90.0%)",
    ]


def test_no_mistakes_is_said_plainly():
    right = PROBA.argmax(axis=1)
    mistakes = explore.mistake_order(right, PROBA)
    assert len(mistakes) == 0
    assert "No mistakes" in explore.mistake_summary(0, mistakes, right, PROBA, CLASS_NAMES)


def test_painting_figure_is_the_grad_cam_of_the_chosen_artist(model, paintings):
    fig = explore.painting_figure(model, paintings, Y_TRUE, PROBA, CLASS_NAMES, SIZE, 1, 2)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["painting", "evidence for Monet (10%)"]
    assert fig.get_suptitle() == "painting 1, true: Degas (wrong)"
    assert fig.axes[0].images[0].get_array().shape[:2] == (SIZE, SIZE)  # the centre crop
    jpeg = explore.figure_bytes(fig)
    assert jpeg[:2] == b"\xff\xd8"


def test_mistake_figure_names_true_and_predicted(paintings):
    fig = explore.mistake_figure(paintings, Y_TRUE, PROBA, CLASS_NAMES, 3)
    assert fig.axes[0].get_title() == "painting 3, true: Cezanne\npredicted: Degas (90%)"
    plt.close(fig)


def test_explorer_starts_on_the_chosen_painting_and_its_top_answer(model, paintings):
    explorer = explore.PaintingExplorer(model, paintings, Y_TRUE, PROBA, CLASS_NAMES, SIZE, index=3)
    assert explorer.painting.value == 3
    assert explorer.artist.value == 1  # Degas, the model's top answer for painting 3
    assert "Painting 3, by Cezanne" in explorer.text.value
    assert explorer.image.value[:2] == b"\xff\xd8"
    assert explorer.painting.options[3] == ("3: Cezanne", 3)


def test_explorer_controls_change_what_it_shows(model, paintings):
    explorer = explore.PaintingExplorer(model, paintings, Y_TRUE, PROBA, CLASS_NAMES, SIZE)
    text, image = explorer.text.value, explorer.image.value

    explorer.painting.value = 4
    assert "Painting 4, by Degas" in explorer.text.value
    assert explorer.text.value == explore.preformatted(
        explore.painting_summary(4, Y_TRUE, PROBA, CLASS_NAMES)
    )
    assert explorer.text.value != text
    assert explorer.image.value != image

    text, image = explorer.text.value, explorer.image.value
    explorer.artist.value = 2
    assert explorer.text.value == text  # the top three do not depend on the chosen artist
    assert explorer.image.value != image


def test_stepper_steps_through_the_mistakes(paintings):
    stepper = explore.MistakesStepper(paintings, Y_TRUE, PROBA, CLASS_NAMES, data_label="test data")
    assert stepper.position.max == 3
    assert "Mistake 1 of 3: painting 3" in stepper.text.value
    assert stepper.previous.disabled and not stepper.next.disabled
    first_image = stepper.image.value

    stepper.next.click()
    assert stepper.position.value == 2
    assert "Mistake 2 of 3: painting 1" in stepper.text.value
    assert stepper.image.value != first_image

    stepper.next.click()
    assert "Mistake 3 of 3: painting 5" in stepper.text.value
    assert stepper.next.disabled
    stepper.next.click()  # a click at the end stays there
    assert stepper.position.value == 3

    stepper.position.value = 1  # the slider
    assert "Mistake 1 of 3: painting 3" in stepper.text.value
    assert stepper.image.value == first_image
    stepper.previous.click()
    assert stepper.position.value == 1


def test_stepper_without_mistakes(paintings):
    right = PROBA.argmax(axis=1)
    stepper = explore.MistakesStepper(paintings, right, PROBA, CLASS_NAMES)
    assert "No mistakes" in stepper.text.value
    assert stepper.previous.disabled and stepper.next.disabled and stepper.position.disabled
    assert stepper.image.value == b""


@pytest.fixture()
def gallery(tmp_path):
    """Three training paintings on disk (one since deleted) and their made-up features."""
    import cv2

    files = []
    for n, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        path = tmp_path / f"painting_{n}.png"
        cv2.imwrite(str(path), np.full((40, 60, 3), colour, dtype=np.uint8))
        files.append(str(path))
    Path(files[2]).unlink()
    embeddings = np.eye(3, dtype=np.float32)
    return similar.build_gallery(files, ["Monet", "Degas", "Cezanne"], embeddings)


def test_closest_figure_shows_the_nearest_paintings_first(gallery):
    query = np.array([0.2, 0.9, 0.1], dtype=np.float32)
    fig = explore.closest_figure(gallery, query)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Degas\nsimilarity 0.90",
        "Monet\nsimilarity 0.20",
        "Cezanne\nsimilarity 0.10",
    ]
    degas = fig.axes[0].images[0].get_array()
    assert degas.shape == (128, 128, 3) and tuple(degas[0, 0]) == (0, 255, 0)  # RGB, not BGR
    assert not fig.axes[2].images and "file not found" in fig.axes[2].texts[0].get_text()
    plt.close(fig)


def test_explorer_with_a_gallery_shows_the_closest_paintings(model, paintings, gallery):
    embeddings = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    explorer = explore.PaintingExplorer(
        model, paintings, Y_TRUE, PROBA, CLASS_NAMES, SIZE, gallery=gallery, embeddings=embeddings
    )
    assert explorer.closest in explorer.children
    first = explorer.closest.value
    assert first[:2] == b"\xff\xd8"
    explorer.artist.value = 2
    assert explorer.closest.value == first  # the likeness does not depend on the artist
    explorer.painting.value = 1
    assert explorer.closest.value != first
    assert (
        explore.PaintingExplorer(model, paintings, Y_TRUE, PROBA, CLASS_NAMES, SIZE).closest is None
    )
