"""Paintings like this one: the closest training paintings by their ImageNet features.

An art historian asks "what does this canvas resemble?" as often as "who painted it?". Every
painting is described by EfficientNet-Lite0's pooled ImageNet features (1,280 numbers,
scaled to length 1), whatever network the run trained, and paintings are compared by
cosine similarity (1: the same direction; near 0: nothing in common).

A softmax always spreads 100% over the artists it knows, even for a painting by someone
else. The gallery also keeps how close the validation paintings come to their nearest
training painting: a new painting farther from every training painting than 95% of the
validation paintings are is said to resemble none of the paintings the model knows.
Only the features are kept with a run (``embeddings.npz``), never copies of the images.
"""

import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from utils import paths, pretrained, runs
from utils.backend import keras

GALLERY_FILE = "embeddings.npz"
FEATURES = 1280  # EfficientNet-Lite0's channels before its ImageNet layer
# Share of the validation paintings that must come at least this close to a training
# painting: a new painting below that closeness is called unfamiliar.
FAMILIAR_SHARE = 0.95
# Images embedded at once; the arrays are read one slice at a time (memory-mapped is fine).
EMBED_ROWS = 256


@cache
def _extractor(image_size: int) -> keras.Model:
    # Always float32, whatever precision the run trains in: a gallery built in a bfloat16 run
    # must give the same similarities as make predict, which computes in float32.
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        base = pretrained.build_efficientnet_lite0(image_size)
    finally:
        keras.config.set_dtype_policy(policy)
    pooled = keras.layers.GlobalAveragePooling2D(name="features", dtype="float32")(base.output)
    return keras.Model(base.input, pooled, name="imagenet_features")


def embed(X: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Each uint8 RGB image's ImageNet features, shape (N, 1280), float32, of length 1."""
    if len(X) == 0:
        return np.zeros((0, FEATURES), dtype=np.float32)
    extractor = _extractor(int(X.shape[1]))
    features = np.concatenate(
        [
            np.asarray(
                extractor.predict(np.asarray(X[start : start + EMBED_ROWS]), batch_size, verbose=0),
                dtype=np.float32,
            )
            for start in range(0, len(X), EMBED_ROWS)
        ]
    )
    lengths = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(lengths, 1e-12)


@dataclass(frozen=True)
class Gallery:
    """The training paintings' features, their files and artists, and the closeness below
    which a painting is unfamiliar."""

    paintings: list[str]
    artists: list[str]
    embeddings: np.ndarray
    familiar_from: float


def build_gallery(
    paintings: list[str], artists: list[str], embeddings: np.ndarray, validation: np.ndarray
) -> Gallery:
    """A gallery of the training paintings; ``validation`` (their features) sets how close a
    painting must come to one of them to count as familiar."""
    nearest = (validation @ embeddings.T).max(axis=1) if len(validation) else np.zeros(1)
    familiar_from = float(np.quantile(nearest, 1 - FAMILIAR_SHARE))
    return Gallery(list(paintings), list(artists), embeddings.astype(np.float32), familiar_from)


def gallery_of_run(
    run_dir: Path,
    X_train: np.ndarray,
    train_paths: list[Path],
    train_artists: list[str],
    X_val: np.ndarray,
) -> tuple[Gallery, np.ndarray]:
    """Embed the training paintings and the evaluation paintings (``X_val``, which set how
    close counts as familiar), save the gallery as ``run_dir/embeddings.npz`` for
    ``make predict``, and return it with the evaluation paintings' features."""
    validation = embed(X_val)
    painting_names = [paths.display(p) for p in train_paths]
    gallery = build_gallery(painting_names, train_artists, embed(X_train), validation)
    save(Path(run_dir) / GALLERY_FILE, gallery)
    return gallery, validation


def save(path: str | os.PathLike[str], gallery: Gallery) -> Path:
    """Write the gallery as ``.npz`` (no pickles), atomically."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        paintings=np.array(gallery.paintings, dtype=str),
        artists=np.array(gallery.artists, dtype=str),
        embeddings=gallery.embeddings,
        familiar_from=np.float64(gallery.familiar_from),
    )
    return runs.write_bytes(Path(path), buffer.getvalue())


def load(path: str | os.PathLike[str]) -> Gallery:
    """A gallery ``save`` wrote."""
    with np.load(path, allow_pickle=False) as stored:
        return Gallery(
            stored["paintings"].tolist(),
            stored["artists"].tolist(),
            stored["embeddings"],
            float(stored["familiar_from"]),
        )


def closest(gallery: Gallery, embedding: np.ndarray, k: int = 3) -> list[tuple[str, str, float]]:
    """The ``k`` training paintings closest to one painting's features, closest first:
    (file, artist, cosine similarity)."""
    similarity = gallery.embeddings @ embedding
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(gallery.paintings[i], gallery.artists[i], float(similarity[i])) for i in order]


def describe(gallery: Gallery, embedding: np.ndarray, k: int = 3) -> str:
    """The closest training paintings as lines of text, and whether the painting resembles
    any painting the model knows."""
    nearest = closest(gallery, embedding, k)
    lines = ["Closest training paintings (cosine similarity of their ImageNet features):"]
    lines += [
        f"  {rank}. {artist:<10} {similarity:.2f}  {painting}"
        for rank, (painting, artist, similarity) in enumerate(nearest, 1)
    ]
    if nearest and nearest[0][2] < gallery.familiar_from:
        lines.append(
            "It resembles none of the paintings the model knows: even the closest is farther "
            f"away than for {FAMILIAR_SHARE:.0%} of the validation paintings "
            f"(similarity {nearest[0][2]:.2f} < {gallery.familiar_from:.2f}). It may be by none "
            "of these painters; treat the probabilities above with great care."
        )
    else:
        lines.append(
            "It is as close to a training painting as most validation paintings are "
            f"(similarity {gallery.familiar_from:.2f} or more)."
        )
    return "\n".join(lines)
