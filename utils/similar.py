"""Paintings like this one: the closest training paintings by their ImageNet features.

An art historian asks "what does this canvas resemble?" as often as "who painted it?". Every
painting is described by EfficientNet-Lite0's pooled ImageNet features (1,280 numbers,
scaled to length 1), whatever network the run trained, and paintings are compared by
cosine similarity (1: the same direction; near 0: nothing in common).

A softmax always spreads 100% over the artists it knows, even for a painting by someone
else. The gallery therefore also says whether a painting resembles the paintings the model
knows at all. Each artist's *typical painting* is the mean direction of their training
paintings' features; a painting's *typicality* is its similarity to the closest artist's
typical painting. The training paintings set the bar, each with itself left out of its
artist's mean so that it is judged as a new painting would be: a painting less typical than
99% of them resembles none of the paintings the model knows. The evaluation paintings never
set it, so how often a real painting is wrongly flagged can be measured on them
(``benchmarks/unfamiliar.py``; docs/attribution.md has the figures).
Only the features are kept with a run (``embeddings.npz``), never copies of the images.
"""

import io
import math
import os
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from utils import paths, pretrained, runs
from utils.backend import keras

GALLERY_FILE = "embeddings.npz"
FEATURES = 1280  # EfficientNet-Lite0's channels before its ImageNet layer
# Share of the training paintings (each left out of its artist's mean) at least as typical as
# a familiar painting must be; chosen on training folds (benchmarks/unfamiliar.py).
FAMILIAR_SHARE = 0.99
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
    """The training paintings' features, their files and artists, each artist's typical
    painting (``centroids``, one row per name in ``centroid_artists``), and the typicality
    below which a painting is unfamiliar."""

    paintings: list[str]
    artists: list[str]
    embeddings: np.ndarray
    centroid_artists: list[str]
    centroids: np.ndarray
    familiar_from: float


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(lengths, 1e-12)


def left_out_typicality(artists: list[str], embeddings: np.ndarray) -> np.ndarray:
    """Each training painting's typicality, with the painting left out of its own artist's
    mean (an artist's only painting is compared with the other artists alone). -1, the
    lowest cosine similarity, when no other painting is left to compare with."""
    names = sorted(set(artists))
    index = np.array([names.index(artist) for artist in artists], dtype=np.int64)
    sums = np.zeros((len(names), embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, index, embeddings.astype(np.float64))
    similarity = embeddings @ _unit_rows(sums).T.astype(np.float32)
    own = sums[index] - embeddings
    own_length = np.linalg.norm(own, axis=1)
    similarity[np.arange(len(index)), index] = np.where(
        own_length > 1e-9, (embeddings * own).sum(axis=1) / np.maximum(own_length, 1e-12), -1.0
    )
    return similarity.max(axis=1, initial=-1.0)


def build_gallery(paintings: list[str], artists: list[str], embeddings: np.ndarray) -> Gallery:
    """A gallery of the training paintings, with each artist's typical painting and the
    typicality that 99% of the training paintings (each left out) reach."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    names = sorted(set(artists))
    centroids = (
        np.stack([embeddings[[a == name for a in artists]].mean(axis=0) for name in names])
        if names
        else np.zeros((0, embeddings.shape[1]), dtype=np.float32)
    )
    typicality = left_out_typicality(list(artists), embeddings)
    # "lower": never more than the share's complement of the paintings fall below the bar
    familiar_from = (
        float(np.quantile(typicality, 1 - FAMILIAR_SHARE, method="lower"))
        if len(typicality)
        else -1.0
    )
    return Gallery(
        list(paintings), list(artists), embeddings, names, _unit_rows(centroids), familiar_from
    )


def typicality(gallery: Gallery, embeddings: np.ndarray) -> np.ndarray:
    """Each painting's similarity to the closest artist's typical painting (one row of
    features per painting)."""
    return (np.atleast_2d(embeddings) @ gallery.centroids.T).max(axis=1, initial=-1.0)


def gallery_of_run(
    run_dir: Path,
    X_train: np.ndarray,
    train_paths: list[Path],
    train_artists: list[str],
    X_val: np.ndarray,
) -> tuple[Gallery, np.ndarray]:
    """Embed the training paintings, save their gallery as ``run_dir/embeddings.npz`` for
    ``make predict``, and return it with the evaluation paintings' (``X_val``) features."""
    painting_names = [paths.display(p) for p in train_paths]
    gallery = build_gallery(painting_names, train_artists, embed(X_train))
    validation = embed(X_val)
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
    )
    return runs.write_bytes(Path(path), buffer.getvalue())


class GalleryError(ValueError):
    """A gallery file that cannot be used; the message says why, in one line."""


GALLERY_ARRAYS = ("paintings", "artists", "embeddings")


def _declared_bytes(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> int:
    """The bytes the ``.npy`` member's header declares, read without loading the array."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    return math.prod(shape) * dtype.itemsize


def _check_archive(path: Path) -> None:
    """Refuse, before loading anything, a file ``save`` could not have written: other members,
    compressed ones (a small file that inflates without end), or arrays whose headers declare
    more bytes than the member holds."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            wanted = {f"{name}.npy" for name in GALLERY_ARRAYS}
            if not wanted <= set(members) or len(members) > len(wanted) + 1:
                raise GalleryError(f"it holds {sorted(members)[:6]}, not the gallery's arrays")
            for info in members.values():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise GalleryError(f"{info.filename} is compressed; galleries never are")
                if _declared_bytes(archive, info) > info.file_size:
                    raise GalleryError(f"{info.filename} declares more data than it holds")
    except GalleryError:
        raise
    except Exception as error:  # a damaged archive or .npy header raises many kinds
        raise GalleryError(f"not a gallery archive ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load(path: str | os.PathLike[str]) -> Gallery:
    """A gallery ``save`` wrote. The typical paintings and the bar are computed again from the
    features, so a gallery saved under an earlier rule is judged by today's.

    Raises ``GalleryError`` (one line) for a file that is not such a gallery: damaged, of other
    arrays or shapes, with non-finite features, or one that would inflate in memory.
    """
    path = Path(path)
    try:
        _check_archive(path)
        with np.load(path, allow_pickle=False) as stored:
            paintings, artists, embeddings = (stored[name] for name in GALLERY_ARRAYS)
    except GalleryError as error:
        raise GalleryError(f"{paths.display(path)}: {error}") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise GalleryError(f"{paths.display(path)}: {_first_line(error)}") from None
    count = len(embeddings) if embeddings.ndim == 2 else -1
    if not (
        embeddings.ndim == 2
        and embeddings.shape[1] == FEATURES
        and embeddings.dtype.kind == "f"
        and paintings.shape == artists.shape == (count,)
        and paintings.dtype.kind == artists.dtype.kind == "U"
    ):
        raise GalleryError(
            f"{paths.display(path)}: its arrays do not fit together (features "
            f"{embeddings.shape} {embeddings.dtype}, paintings {paintings.shape}, artists "
            f"{artists.shape}; {FEATURES} features per painting expected)"
        )
    if not np.isfinite(embeddings).all():
        raise GalleryError(f"{paths.display(path)}: some features are not finite numbers")
    return build_gallery(paintings.tolist(), artists.tolist(), embeddings)


def closest(gallery: Gallery, embedding: np.ndarray, k: int = 3) -> list[tuple[str, str, float]]:
    """The ``k`` training paintings closest to one painting's features, closest first:
    (file, artist, cosine similarity)."""
    similarity = gallery.embeddings @ embedding
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(gallery.paintings[i], gallery.artists[i], float(similarity[i])) for i in order]


def describe(gallery: Gallery, embedding: np.ndarray, k: int = 3) -> str:
    """The closest training paintings as lines of text, and whether the painting resembles
    the paintings the model knows."""
    nearest = closest(gallery, embedding, k)
    lines = ["Closest training paintings (cosine similarity of their ImageNet features):"]
    lines += [
        f"  {rank}. {artist:<10} {similarity:.2f}  {painting}"
        for rank, (painting, artist, similarity) in enumerate(nearest, 1)
    ]
    closeness = float(typicality(gallery, embedding)[0])
    scores = gallery.centroids @ embedding
    artist = gallery.centroid_artists[int(np.argmax(scores))] if len(scores) else "none"
    if closeness < gallery.familiar_from:
        lines.append(
            "It resembles none of the paintings the model knows: even the closest artist's "
            f"typical painting ({artist}'s) is farther from it than from {FAMILIAR_SHARE:.0%} of "
            f"the training paintings (similarity {closeness:.2f} < {gallery.familiar_from:.2f}). "
            "It may be by none of these painters; treat the probabilities above with great care."
        )
    else:
        lines.append(
            f"It is as close to an artist's typical painting ({artist}'s, {closeness:.2f}) as "
            f"{FAMILIAR_SHARE:.0%} of the training paintings are ({gallery.familiar_from:.2f} "
            "or more)."
        )
    return "\n".join(lines)
