"""Explore a trained model's answers one painting at a time: two small Jupyter widgets.

- ``PaintingExplorer``: pick any evaluation painting and any artist; it shows the model's
  three most likely artists, the Grad-CAM evidence for the chosen artist and, given the
  run's gallery, the three training paintings that look most like it.
- ``MistakesStepper``: step through the wrong answers, the most confident first.

The widgets are thin on purpose. Everything they show comes from the plain functions
below (``painting_summary``, ``painting_figure``, ``mistake_summary``, ``mistake_figure``),
which a headless run (papermill, nbval, the tests) calls too; a widget only turns a
control's value into arguments and puts the result on screen. The widgets need a live
kernel (JupyterLab); a saved or headless notebook shows their placeholder text only.
"""

import html
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from utils import evaluation, explain, images, paths, plots, similar, training

TOP_K = 3


def painting_options(y_true: np.ndarray, class_names: list[str]) -> list[tuple[str, int]]:
    """One choice per painting for a dropdown: ``("index: true artist", index)``."""
    return [(f"{index}: {class_names[int(label)]}", index) for index, label in enumerate(y_true)]


def top_artists(
    probabilities: np.ndarray, class_names: list[str], k: int = TOP_K
) -> list[tuple[str, float]]:
    """The ``k`` most probable artists for one painting, most probable first.

    Each entry is (artist, probability); ties keep class-list order.
    """
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
    return [(class_names[int(i)], float(probabilities[i])) for i in order]


def painting_summary(
    index: int, y_true: np.ndarray, proba: np.ndarray, class_names: list[str], k: int = TOP_K
) -> str:
    """Painting ``index``'s true artist and the model's ``k`` most likely artists, as text."""
    true_artist = class_names[int(y_true[index])]
    width = max(len(name) for name in class_names)
    lines = [f"Painting {index}, by {true_artist}. The model's top {k}:"]
    for rank, (artist, probability) in enumerate(top_artists(proba[index], class_names, k), 1):
        mark = "  <- the true artist" if artist == true_artist else ""
        lines.append(f"  {rank}. {artist:<{width}} {probability:6.1%}{mark}")
    return "\n".join(lines)


def painting_figure(
    model,
    X: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: list[str],
    input_size: int,
    index: int,
    artist: int,
) -> Figure:
    """Painting ``index`` and its Grad-CAM evidence for ``artist`` (a class index).

    Drawn as in the notebook's Grad-CAM section: the centre ``input_size`` square the
    model sees, the map's title with the artist's probability, and the painting's title
    in green or red as the model's top answer is right or wrong.
    """
    view = training.centre_crop(X[[index]], input_size)[0]
    heatmap = explain.grad_cam(model, view, artist)
    label = int(y_true[index])
    evidence = f"evidence for {class_names[artist]} ({proba[index, artist]:.0%})"
    title = f"painting {index}, true: {class_names[label]}"
    return plots.grad_cam(
        view, {evidence: heatmap}, title, correct=int(proba[index].argmax()) == label
    )


def closest_figure(
    gallery: similar.Gallery, embedding: np.ndarray, k: int = TOP_K, size: int = 128
) -> Figure:
    """Thumbnails of the ``k`` training paintings closest to a painting's ImageNet features
    (``similar.closest``), each titled with its artist and similarity. The thumbnails are
    read from the paintings' files, which the gallery names; a file gone since is said so."""
    nearest = similar.closest(gallery, embedding, k)
    fig, axes = plt.subplots(1, max(len(nearest), 1), figsize=(2.6 * max(len(nearest), 1), 3.1))
    for ax, (painting, artist, similarity) in zip(np.atleast_1d(axes), nearest, strict=False):
        try:
            thumbnail, _ = images.load_image(paths.resolve(painting), size, "crop")
            ax.imshow(thumbnail)
        except (OSError, images.UnreadableImageError):
            ax.text(0.5, 0.5, "file not found\nor unreadable", ha="center", va="center")
        ax.set_title(f"{artist}\nsimilarity {similarity:.2f}", fontsize=10)
        ax.axis("off")
    fig.suptitle("Closest training paintings (ImageNet features)")
    fig.tight_layout()
    return fig


def mistake_order(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Indices of every wrong answer, the most confident first."""
    return evaluation.most_confident_mistakes(y_true, proba, count=len(y_true))


def mistake_summary(
    position: int,
    mistakes: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: list[str],
) -> str:
    """Mistake number ``position`` (0 is the most confident) of ``mistakes``, as text."""
    if not len(mistakes):
        return "No mistakes: the model got every evaluation painting right."
    index = int(mistakes[position])
    label, predicted = int(y_true[index]), int(proba[index].argmax())
    return "\n".join(
        [
            f"Mistake {position + 1} of {len(mistakes)}: painting {index}",
            f"  true artist:      {class_names[label]} ({proba[index, label]:.1%})",
            f"  predicted artist: {class_names[predicted]} ({proba[index, predicted]:.1%})",
        ]
    )


def mistake_figure(
    X: np.ndarray, y_true: np.ndarray, proba: np.ndarray, class_names: list[str], index: int
) -> Figure:
    """Painting ``index`` beside its probability for every artist, true and predicted named."""
    label, predicted = int(y_true[index]), int(proba[index].argmax())
    title = (
        f"painting {index}, true: {class_names[label]}\n"
        f"predicted: {class_names[predicted]} ({proba[index, predicted]:.0%})"
    )
    return plots.attribution(X[index], proba[index], class_names, title)


def figure_bytes(fig: Figure, image_format: str = "jpeg") -> bytes:
    """The figure encoded as an image file (JPEG, like the notebook's figures); closes it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=image_format, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def preformatted(text: str) -> str:
    """Plain text as HTML that keeps its line breaks and columns."""
    return f"<pre style='margin: 0'>{html.escape(text)}</pre>"


def _labelled(fig: Figure, data_label: str) -> Figure:
    return plots.label_data(fig, data_label) if data_label else fig


class PaintingExplorer(widgets.VBox):
    """Pick a painting and an artist; see the top artists and the Grad-CAM for that artist.

    ``painting`` and ``artist`` are the controls (dropdowns), ``text`` and ``image`` what
    they show; setting a control's ``value`` redraws both, as a click would. Given the
    run's ``gallery`` and the evaluation paintings' ``embeddings`` (``similar.embed``),
    ``closest`` shows the training paintings most like the chosen one.
    """

    def __init__(
        self,
        model,
        X: np.ndarray,
        y_true: np.ndarray,
        proba: np.ndarray,
        class_names: list[str],
        input_size: int,
        index: int = 0,
        artist: int | None = None,
        data_label: str = "",
        gallery: similar.Gallery | None = None,
        embeddings: np.ndarray | None = None,
    ) -> None:
        self._network, self._X, self._y, self._proba = model, X, y_true, proba
        self._gallery, self._embeddings = gallery, embeddings
        self._class_names, self._input_size, self._data_label = class_names, input_size, data_label
        wide = {"description_width": "initial"}
        self.painting = widgets.Dropdown(
            options=painting_options(y_true, class_names),
            value=index,
            description="Painting (index: true artist)",
            style=wide,
        )
        self.artist = widgets.Dropdown(
            options=[(name, i) for i, name in enumerate(class_names)],
            value=int(proba[index].argmax()) if artist is None else artist,
            description="Grad-CAM evidence for",
            style=wide,
        )
        self.text = widgets.HTML()
        self.image = widgets.Image(format="jpeg")
        shown = [widgets.HBox([self.painting, self.artist]), self.text, self.image]
        self.closest = None
        if gallery is not None and embeddings is not None:
            self.closest = widgets.Image(format="jpeg")
            self.closest.add_class("cnn-artists-closest")
            shown.append(self.closest)
            self.painting.observe(self._redraw_closest, names="value")
            self._redraw_closest()
        super().__init__(shown)
        self.add_class("cnn-artists-explorer")
        self.painting.observe(self._redraw, names="value")
        self.artist.observe(self._redraw, names="value")
        self._redraw()

    def _redraw_closest(self, _change: dict | None = None) -> None:
        fig = closest_figure(self._gallery, self._embeddings[int(self.painting.value)])
        self.closest.value = figure_bytes(_labelled(fig, self._data_label))

    def _redraw(self, _change: dict | None = None) -> None:
        index, artist = int(self.painting.value), int(self.artist.value)
        self.text.value = preformatted(
            painting_summary(index, self._y, self._proba, self._class_names)
        )
        fig = painting_figure(
            self._network,
            self._X,
            self._y,
            self._proba,
            self._class_names,
            self._input_size,
            index,
            artist,
        )
        self.image.value = figure_bytes(_labelled(fig, self._data_label))


class MistakesStepper(widgets.VBox):
    """Step through the wrong answers, most confident first, with buttons or a slider.

    ``position`` (a slider, 1 for the most confident mistake), ``previous`` and ``next``
    are the controls; ``text`` and ``image`` show the painting, its true artist, the
    predicted artist and its probability.
    """

    def __init__(
        self,
        X: np.ndarray,
        y_true: np.ndarray,
        proba: np.ndarray,
        class_names: list[str],
        data_label: str = "",
    ) -> None:
        self._X, self._y, self._proba = X, y_true, proba
        self._class_names, self._data_label = class_names, data_label
        self.mistakes = mistake_order(y_true, proba)
        count = len(self.mistakes)
        self.previous = widgets.Button(description="Previous", icon="arrow-left")
        self.next = widgets.Button(description="Next", icon="arrow-right")
        self.position = widgets.IntSlider(
            value=1, min=1, max=max(count, 1), description="Mistake", disabled=count < 2
        )
        self.text = widgets.HTML()
        self.image = widgets.Image(format="jpeg")
        super().__init__(
            [widgets.HBox([self.previous, self.next, self.position]), self.text, self.image]
        )
        self.add_class("cnn-artists-mistakes")
        self.previous.on_click(lambda _button: self.step(-1))
        self.next.on_click(lambda _button: self.step(+1))
        self.position.observe(self._redraw, names="value")
        self._redraw()

    def step(self, by: int) -> None:
        """Move ``by`` mistakes along (negative: back), staying within the list."""
        self.position.value = int(np.clip(self.position.value + by, 1, self.position.max))

    def _redraw(self, _change: dict | None = None) -> None:
        count, position = len(self.mistakes), self.position.value - 1
        self.previous.disabled = position <= 0
        self.next.disabled = position >= count - 1
        self.text.value = preformatted(
            mistake_summary(position, self.mistakes, self._y, self._proba, self._class_names)
        )
        if count:
            index = int(self.mistakes[position])
            fig = mistake_figure(self._X, self._y, self._proba, self._class_names, index)
            self.image.value = figure_bytes(_labelled(fig, self._data_label))
