"""Paintings like this one: features, the closest training paintings, and the unfamiliar."""

import numpy as np
import pytest

from utils import dataset, images, paths, sample_data, similar

SIZE = 64


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The synthetic sample (8 training, 4 validation paintings per artist) as arrays."""
    root = sample_data.generate(tmp_path_factory.mktemp("sample"), 8, 4)
    files = dataset.collect_files(root)
    train = images.load_images(files.train.paths, SIZE)
    val = images.load_images(files.val.paths, SIZE)
    names = files.class_names
    return {
        "paintings": [str(files.train.paths[i]) for i in train.kept],
        "artists": [names[files.train.labels[i]] for i in train.kept],
        "train": similar.embed(train.X),
        "val": similar.embed(val.X),
        "train_X": train.X,
        "val_X": val.X,
    }


@pytest.fixture(scope="module")
def gallery(sample):
    return similar.build_gallery(
        sample["paintings"], sample["artists"], sample["train"], sample["val"]
    )


def test_features_have_length_one_and_repeat_exactly(sample):
    assert sample["train"].shape == (len(sample["paintings"]), similar.FEATURES)
    np.testing.assert_allclose(np.linalg.norm(sample["train"], axis=1), 1, rtol=1e-5)
    again = similar.embed(sample["val_X"][:3])
    np.testing.assert_array_equal(again, sample["val"][:3])
    assert similar.embed(sample["val_X"][:0]).shape == (0, similar.FEATURES)


def test_a_training_painting_finds_itself_first(gallery, sample):
    [(painting, artist, similarity), *_] = similar.closest(gallery, sample["train"][5], k=3)
    assert (painting, artist) == (sample["paintings"][5], sample["artists"][5])
    assert similarity == pytest.approx(1.0, abs=1e-5)


def test_most_validation_paintings_are_familiar(gallery, sample):
    nearest = (sample["val"] @ gallery.embeddings.T).max(axis=1)
    assert np.mean(nearest >= gallery.familiar_from) >= similar.FAMILIAR_SHARE
    text = similar.describe(gallery, sample["val"][int(np.argmax(nearest))])
    assert "resembles none" not in text and text.count("\n") == 4


def test_an_image_unlike_any_painting_is_called_unfamiliar(gallery):
    """A black-and-white checkerboard: the softmax would still name a painter; this does not."""
    squares = (np.indices((SIZE, SIZE)).sum(axis=0) // 8 % 2 * 255).astype(np.uint8)
    checkerboard = np.repeat(squares[:, :, np.newaxis], 3, axis=2)
    text = similar.describe(gallery, similar.embed(checkerboard[np.newaxis])[0])
    assert "resembles none of the paintings the model knows" in text


def test_a_gallery_is_saved_without_pickles_and_read_back(gallery, tmp_path):
    path = similar.save(tmp_path / similar.GALLERY_FILE, gallery)
    np.load(path, allow_pickle=False).close()
    loaded = similar.load(path)
    assert loaded.paintings == gallery.paintings and loaded.artists == gallery.artists
    np.testing.assert_array_equal(loaded.embeddings, gallery.embeddings)
    assert loaded.familiar_from == gallery.familiar_from


def test_features_are_float32_whatever_precision_the_run_trains_in():
    """A bfloat16 run's gallery must give make predict's (float32) similarities."""
    from utils.backend import keras

    images = np.random.default_rng(1).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    similar._extractor.cache_clear()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        in_bfloat16_run = similar.embed(images)
    finally:
        keras.config.set_dtype_policy("float32")
    similar._extractor.cache_clear()
    np.testing.assert_array_equal(in_bfloat16_run, similar.embed(images))


def test_a_runs_gallery_is_embedded_saved_and_returned_with_the_evaluation_features(
    gallery, sample, tmp_path
):
    """What the chapter's explorer cell does in one line."""
    painting_paths = [paths.resolve(p) for p in sample["paintings"]]
    made, validation = similar.gallery_of_run(
        tmp_path, sample["train_X"], painting_paths, sample["artists"], sample["val_X"]
    )
    np.testing.assert_array_equal(validation, sample["val"])
    np.testing.assert_array_equal(made.embeddings, gallery.embeddings)
    assert made.familiar_from == gallery.familiar_from
    assert made.paintings == [paths.display(p) for p in painting_paths]
    saved = similar.load(tmp_path / similar.GALLERY_FILE)
    assert saved.paintings == made.paintings and saved.artists == sample["artists"]
